package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// logLines parses s's JSON log, one object per line.
func logLines(t *testing.T, s *testServer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("-log-format json wrote a line that is not JSON: %q: %v", sc.Text(), err)
		}
		lines = append(lines, line)
	}
	return lines
}

// findLog returns the first line with msg and every given attribute.
func findLog(lines []map[string]any, msg string, attrs map[string]any) map[string]any {
next:
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		for k, v := range attrs {
			if l[k] != v {
				continue next
			}
		}
		return l
	}
	return nil
}

// One line per finished connection says who, where from, how it ended and
// how much it carried; admin changes say who asked; payloads never appear.
func TestLogsConnectionClosesAndAdminChanges(t *testing.T) {
	s := startServer(t, "-log-format", "json", "-max-message-rate", "1", "-max-message-burst", "2")
	ann := s.dial(t, "lobby", "user=ann")
	eventually(t, "ann joined", func() bool { return s.clientCount(t, "lobby") == 1 })
	for _, text := range []string{"secret-payload-1", "secret-payload-2"} {
		if err := ann.WriteMessage(1, []byte(text)); err != nil {
			t.Fatal(err)
		}
		read(t, ann) // echo
	}
	annID := clientIDOf(t, s, "lobby", "ann")
	if code := s.rest(t, "POST", "/v1/clients/"+annID+":kick", `{"reason":"spam","banSeconds":60}`, nil); code != http.StatusOK {
		t.Fatalf("kick: HTTP %d", code)
	}
	expectClose(t, ann, 4000, "spam")

	// A flood: over the rate the connection is closed with 1008, at warn.
	bob := s.dial(t, "lobby", "user=bob")
	for range 5 {
		if bob.WriteMessage(1, []byte("secret-payload-3")) != nil {
			break
		}
	}
	expectClose(t, bob, 1008, "")
	if code := s.rest(t, "DELETE", "/v1/bans/ann", "", nil); code != http.StatusOK {
		t.Fatalf("unban: HTTP %d", code)
	}

	var lines []map[string]any
	eventually(t, "both close lines", func() bool {
		lines = logLines(t, s)
		return findLog(lines, "connection closed", map[string]any{"user": "bob"}) != nil &&
			findLog(lines, "connection closed", map[string]any{"user": "ann"}) != nil
	})
	closed := findLog(lines, "connection closed", map[string]any{"user": "ann"})
	if closed["level"] != "INFO" || closed["client"] != annID || closed["code"] != 4000.0 || closed["reason"] != "spam" ||
		closed["protocol"] != "raw" || closed["messages_in"] != 2.0 || closed["messages_out"] != 2.0 {
		t.Errorf("ann's close line: %v", closed)
	}
	if rooms, _ := closed["rooms"].([]any); len(rooms) != 1 || rooms[0] != "lobby" {
		t.Errorf("ann's close line lists rooms %v", closed["rooms"])
	}
	if remote, _ := closed["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") {
		t.Errorf("ann's close line has remote %q", closed["remote"])
	}
	if d, _ := closed["duration"].(string); d == "" {
		t.Errorf("ann's close line has duration %v", closed["duration"])
	} else if _, err := time.ParseDuration(d); err != nil {
		t.Errorf("ann's close line has duration %q: %v", d, err)
	}
	if flood := findLog(lines, "connection closed", map[string]any{"user": "bob"}); flood["level"] != "WARN" || flood["code"] != 1008.0 {
		t.Errorf("bob's close line (a flood): %v, want WARN and 1008", flood)
	}
	if kick := findLog(lines, "client kicked and user banned", map[string]any{"client": annID, "user": "ann", "api": "rest", "reason": "spam"}); kick == nil {
		t.Errorf("no line for the kick and ban")
	} else if kick["caller"] != "127.0.0.1" {
		t.Errorf("the kick's caller %v, want the REST client's address", kick["caller"])
	}
	if findLog(lines, "user unbanned", map[string]any{"user": "ann", "bans_lifted": 1.0}) == nil {
		t.Errorf("no line for the unban")
	}
	if strings.Contains(s.logs.String(), "secret-payload") {
		t.Errorf("a payload reached the log")
	}
}

// -log-level warn keeps a busy node's log to what needs a look: ordinary
// closes go unlogged, floods and slow consumers still show.
func TestLogLevelWarnDropsOrdinaryCloses(t *testing.T) {
	s := startServer(t, "-log-format", "json", "-log-level", "warn", "-max-message-rate", "1", "-max-message-burst", "1")
	quiet := s.dial(t, "r", "user=quiet")
	quiet.Close()
	loud := s.dial(t, "r", "user=loud")
	for range 4 {
		if loud.WriteMessage(1, []byte("x")) != nil {
			break
		}
	}
	expectClose(t, loud, 1008, "")
	eventually(t, "the flood logged", func() bool {
		return findLog(logLines(t, s), "connection closed", map[string]any{"user": "loud"}) != nil
	})
	eventually(t, "the quiet client gone", func() bool { return s.clientCount(t, "r") <= 0 })
	if l := findLog(logLines(t, s), "connection closed", map[string]any{"user": "quiet"}); l != nil {
		t.Errorf("an ordinary close logged at -log-level warn: %v", l)
	}
}
