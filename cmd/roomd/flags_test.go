package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagsFallBackToEnvironment(t *testing.T) {
	env := map[string]string{
		"ROOMD_MAX_QUEUE_BYTES": "2048",
		"ROOMD_AUTO_CREATE":     "false",
		"ROOMD_PING_INTERVAL":   "3s",
		"ROOMD_LISTEN":          ":1",
	}
	cfg, err := parseConfig([]string{"-listen", ":2"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxQueueBytes != 2048 || cfg.autoCreate || cfg.pingInterval != 3*time.Second {
		t.Errorf("environment not applied: %+v", cfg)
	}
	if cfg.listen != ":2" {
		t.Errorf("-listen = %q, want the command line's :2 over ROOMD_LISTEN", cfg.listen)
	}
	if cfg.adminGRPC != "127.0.0.1:9090" || cfg.adminHTTP != "127.0.0.1:9091" {
		t.Errorf("admin listeners must default to loopback, got %q %q", cfg.adminGRPC, cfg.adminHTTP)
	}
}

func TestBadConfigIsRefusedWithTheName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{env: map[string]string{"ROOMD_MAX_QUEUE_BYTES": "lots"}, want: "ROOMD_MAX_QUEUE_BYTES"},
		{args: []string{"-max-message-bytes", "0"}, want: "-max-message-bytes"},
		{args: []string{"-log-level", "loud"}, want: "-log-level"},
		{args: []string{"-history-bytes", "0"}, want: "-history-bytes"},
		{args: []string{"-max-rooms-per-ip", "-1"}, want: "-max-rooms-per-ip"},
		{env: map[string]string{"ROOMD_HISTORY_BYTES_PER_ROOM": "-1"}, want: "-history-bytes-per-room"},
		{args: []string{"extra"}, want: "unexpected arguments"},
	} {
		_, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %q env %v: error %v, want one naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}
