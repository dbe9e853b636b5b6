package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime/debug"
	"testing"

	"roomd/gen/openapiv2"
)

func TestOpenAPIDocumentInfo(t *testing.T) {
	// NewGateway only needs a client; nothing is called here.
	conn, err := DialInProcess(ListenInProcess())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := NewGateway(context.Background(), conn, GatewayConfig{Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	var got, generated map[string]any
	if err := json.Unmarshal(served, &got); err != nil {
		t.Fatalf("served document: %v", err)
	}
	json.Unmarshal(openapiv2.RoomServiceJSON, &generated)
	info, _ := got["info"].(map[string]any)
	if info["title"] != "roomd admin API" || info["version"] != "v1.2.3" || info["description"] == "" {
		t.Errorf("info %v, want the title, a description and version v1.2.3", info)
	}
	delete(got, "info")
	delete(generated, "info")
	if !reflect.DeepEqual(got, generated) {
		t.Error("the served document differs from the generated one beyond info")
	}
	if !bytes.HasPrefix(served, []byte("{\n  \"swagger\": \"2.0\",\n  \"info\"")) {
		t.Errorf("the document's fields are not in the generator's order: %.60q", served)
	}
}

func TestVersionOf(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"v1.2.3", settings("vcs.revision", "0123456789abcdef"), "v1.2.3"},
		{"v0.0.0-20260102150405-0123456789ab+dirty", nil, "v0.0.0-20260102150405-0123456789ab+dirty"},
		{"(devel)", nil, "(devel)"},
		{"", nil, "(devel)"},
		{"(devel)", settings("vcs.revision", "0123456789abcdef", "vcs.modified", "false"), "(devel) 0123456789ab"},
		{"(devel)", settings("vcs.revision", "0123456789abcdef", "vcs.modified", "true"), "(devel) 0123456789ab+dirty"},
	} {
		info := &debug.BuildInfo{Main: debug.Module{Version: tc.version}, Settings: tc.settings}
		if got := versionOf(info); got != tc.want {
			t.Errorf("versionOf(%q, %v) = %q, want %q", tc.version, tc.settings, got, tc.want)
		}
	}
}

// A version set at build time (-ldflags -X) is the version.
func TestBuildVersionSetAtBuildTime(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v9.8.7"
	if got := BuildVersion(); got != "v9.8.7" {
		t.Errorf("BuildVersion = %q, want the one set at build time", got)
	}
}
