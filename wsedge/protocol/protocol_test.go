package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	r, err := Decode([]byte(`{"op":"join","id":"1","room":"lobby","since":41,"epoch":"e"}`))
	if err != nil || r.Op != OpJoin || r.Room != "lobby" || r.Since == nil || *r.Since != 41 || r.Epoch != "e" {
		t.Fatalf("join = %+v, %v", r, err)
	}
	r, err = Decode([]byte(`{"op":"publish","id":"2","room":"lobby","data":{"text":"hi","n":[1,2]}}`))
	if err != nil || string(r.Data) != `{"text":"hi","n":[1,2]}` {
		t.Fatalf("publish = %+v, %v", r, err)
	}
	r, err = Decode([]byte(`{"op":"members","id":"3","room":"lobby","after":"k3j9","limit":20}`))
	if err != nil || r.Op != OpMembers || r.After != "k3j9" || r.PageLimit() != 20 {
		t.Fatalf("members = %+v, %v", r, err)
	}
	for _, frame := range []string{`{"op":"members","id":"4","room":"lobby"}`, `{"op":"members","id":"4","room":"lobby","limit":0}`} {
		if r, err := Decode([]byte(frame)); err != nil || r.PageLimit() != MaxMemberPage {
			t.Fatalf("%s: limit %d, %v; want %d", frame, r.PageLimit(), err, MaxMemberPage)
		}
	}
	for frame, want := range map[string]string{
		`{"op":"members","id":"7","room":"r","limit":101}`:          "limit 101 is not between 1 and 100",
		`{"op":"members","id":"7","room":"r","limit":-1}`:           "limit -1",
		`{"op":"members","id":"7","room":"r","since":1}`:            "members takes only",
		`{"op":"join","id":"7","room":"r","after":"x"}`:             "join takes no data, after or limit",
		`{"op":"leave","id":"7","room":"r","limit":5}`:              "leave takes only",
		`{"op":"publish","id":"7","room":"r","data":1,"after":"x"}`: "publish takes no",
		`{"op":"members","id":"7"}`:                                 "missing room",
		`not json`:                                                  "not a request object",
		`{"op":"join","id":"7"}`:                                    "missing room",
		`{"id":"7","room":"r"}`:                                     "missing op",
		`{"op":"dance","id":"7","room":"r"}`:                        "unknown op",
		`{"op":"publish","id":"7","room":"r"}`:                      "publish needs data",
		`{"op":"leave","id":"7","room":"r","data":1}`:               "leave takes only",
		`{"op":"join","id":"7","room":"r","extra":1}`:               "unknown field",
		`{"op":"join","id":"7","room":"r"} {}`:                      "more than one",
		`{"op":"join","id":"7","room":"r","since":-1}`:              "not a request object",
		"\xff": "not valid UTF-8",
	} {
		r, err := Decode([]byte(frame))
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want bad request saying %q", frame, err, want)
		}
		if strings.Contains(frame, `"id":"7"`) && r.ID != "7" {
			t.Errorf("%s: id %q lost, so the error could not name the request", frame, r.ID)
		}
	}
	if _, err := Decode([]byte(`{"op":"join","id":"` + strings.Repeat("x", 65) + `","room":"r"}`)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("long id accepted")
	}
}

func TestEncodeShapes(t *testing.T) {
	var m map[string]any
	json.Unmarshal(Encode(Message{Type: "message", Room: "r", Seq: 3, From: Sender{Server: true}, Data: json.RawMessage(`"hi"`)}), &m)
	if m["type"] != "message" || m["seq"] != 3.0 || m["data"] != "hi" || m["from"].(map[string]any)["server"] != true {
		t.Errorf("message encodes as %v", m)
	}
}

// FuzzDecode: any frame decodes to a request or a bad-request error, never
// a panic, and an accepted request is one the server can act on.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"op":"join","id":"1","room":"lobby"}`,
		`{"op":"join","id":"1","room":"lobby","since":18446744073709551615,"epoch":"x"}`,
		`{"op":"publish","id":"2","room":"r","data":[1,{"a":null}]}`,
		`{"op":"leave","id":"3","room":"r"}`,
		`{"op":"members","id":"4","room":"r","after":"k3j9","limit":100}`,
		`{"op":"publish","data":"\ud800"}`,
		`[]`, `null`, `{"op":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := Decode(frame)
		if len(r.ID) > MaxRequestIDLength {
			t.Fatalf("returned a %d-byte id", len(r.ID))
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if r.Room == "" || (r.Op == OpPublish && !json.Valid(r.Data)) || r.PageLimit() < 1 || r.PageLimit() > MaxMemberPage {
			t.Fatalf("accepted unusable request %+v", r)
		}
	})
}
