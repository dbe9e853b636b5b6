package rooms

import "testing"

// Logs name close codes by String: every code roomd sends or reports has a
// name of its own, never the fallback.
func TestCloseCodeStringNamesEveryCode(t *testing.T) {
	codes := []struct {
		code CloseCode
		wire uint16
	}{
		{CloseNormal, 1000},
		{CloseGoingAway, 1001},
		{CloseProtocolError, 1002},
		{CloseNoStatus, 1005},
		{CloseAbnormal, 1006},
		{CloseInvalidPayload, 1007},
		{ClosePolicyViolation, 1008},
		{CloseMessageTooBig, 1009},
		{CloseInternalError, 1011},
		{CloseServiceRestart, 1012},
		{CloseTryAgainLater, 1013},
		{CloseKicked, 4000},
		{CloseRoomDeleted, 4001},
		{CloseSlowConsumer, 4002},
		{CloseUnauthorized, 4401},
		{CloseForbidden, 4403},
	}
	seen := map[string]CloseCode{}
	for _, c := range codes {
		if uint16(c.code) != c.wire {
			t.Errorf("%v is %d on the wire, want %d", c.code, uint16(c.code), c.wire)
		}
		name := c.code.String()
		if name == "other" || name == "" {
			t.Errorf("close code %d prints %q", c.wire, name)
		}
		if prev, ok := seen[name]; ok {
			t.Errorf("close codes %d and %d both print %q", uint16(prev), c.wire, name)
		}
		seen[name] = c.code
	}
	if got := CloseCode(4999).String(); got != "other" {
		t.Errorf("an unnamed code prints %q, want \"other\"", got)
	}
}
