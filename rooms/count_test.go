package rooms

import "testing"

// ClientCount counts connections, in rooms or not, until they leave.
func TestClientCount(t *testing.T) {
	h := NewHub(Config{})
	if n := h.ClientCount(); n != 0 {
		t.Fatalf("an empty Hub counts %d clients", n)
	}
	a, _ := join(t, h, "r", "ann", true)
	join(t, h, "s", "bob", true)
	if _, err := h.Connect(ClientInfo{UserID: "cid"}, &fakeTransport{}, true); err != nil { // in no room
		t.Fatal(err)
	}
	if n := h.ClientCount(); n != 3 {
		t.Errorf("ClientCount %d, want 3", n)
	}
	h.Leave(a, CauseClosedByClient, CloseNormal, "")
	if n := h.ClientCount(); n != 2 {
		t.Errorf("ClientCount %d after one left, want 2", n)
	}
}
