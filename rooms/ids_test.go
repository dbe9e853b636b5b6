package rooms

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNodeName(t *testing.T) {
	for _, ok := range []string{"a", "local", "node-1", "0", "eu-west-2a", strings.Repeat("n", MaxNodeNameLength)} {
		if err := ValidateNodeName(ok); err != nil {
			t.Errorf("ValidateNodeName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "Node", "a_b", "a.b", "a:b", "a b", "nöde", strings.Repeat("n", MaxNodeNameLength+1)} {
		err := ValidateNodeName(bad)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "node name") {
			t.Errorf("ValidateNodeName(%q) = %v, want an ErrInvalidArgument about the node name", bad, err)
		}
	}
}

// A Hub's client ids name its node, and NodeOfClientID reads the name back;
// with no NodeName the node is DefaultNodeName.
func TestClientIDsNameTheirNode(t *testing.T) {
	for _, tc := range []struct{ configured, want string }{{"", DefaultNodeName}, {"node-7", "node-7"}, {strings.Repeat("n", MaxNodeNameLength), strings.Repeat("n", MaxNodeNameLength)}} {
		h := NewHub(Config{NodeName: tc.configured})
		c, _ := join(t, h, "r", "ann", true)
		id := c.ID()
		if !strings.HasPrefix(id, tc.want+string(ClientIDSeparator)) || len(id) > MaxClientIDLength || len(id) > MaxIDBytes {
			t.Errorf("NodeName %q: client id %q, want %q, %q and 16 random characters, at most %d bytes", tc.configured, id, tc.want, ClientIDSeparator, MaxClientIDLength)
		}
		if node, ok := NodeOfClientID(id); !ok || node != tc.want {
			t.Errorf("NodeOfClientID(%q) = %q, %v; want %q, true", id, node, ok, tc.want)
		}
	}
}

func TestNodeOfClientIDRefusesMalformedIDs(t *testing.T) {
	random := "0123456789abcdef"
	for _, bad := range []string{
		"",
		random,                   // today's form without a node
		"_" + random,             // empty node
		"Local_" + random,        // node not lowercase
		"-a_" + random,           // node starting with '-'
		"a.b_" + random,          // '.' in the node
		"local_" + random[:15],   // random part too short
		"local_" + random + "0",  // random part too long
		"local_0123456789abcdei", // 'i' is not in the alphabet
		"local_0123456789ABCDEF",
		"local__" + random,
		"local_" + random + "_x",
		strings.Repeat("n", MaxNodeNameLength+1) + "_" + random,
	} {
		if node, ok := NodeOfClientID(bad); ok || node != "" {
			t.Errorf("NodeOfClientID(%q) = %q, %v; want \"\", false", bad, node, ok)
		}
	}
}

func TestNewHubPanicsOnAnInvalidNodeName(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"Node_1"`) {
			t.Fatalf("NewHub with NodeName Node_1: recovered %v, want a panic naming the node name", r)
		}
	}()
	NewHub(Config{NodeName: "Node_1"})
}

// KickClient, SendToClient and BanClient on one node answer not-found for
// a client of another node, naming that node, and leave their own clients
// alone.
func TestHubRefusesAnotherNodesClient(t *testing.T) {
	a, b := NewHub(Config{NodeName: "node-a"}), NewHub(Config{NodeName: "node-b"})
	_, ownFT := join(t, a, "r", "ann", true)
	foreign, _ := join(t, b, "r", "bob", true)
	id := foreign.ID()
	_, kickErr := a.KickClient(id, "bye")
	sendErr := a.SendToClient(id, &Message{Payload: []byte("hi")})
	_, _, banErr := a.BanClient(id, "bye", 0)
	for name, err := range map[string]error{"KickClient": kickErr, "SendToClient": sendErr, "BanClient": banErr} {
		if !errors.Is(err, ErrClientNotFound) || !strings.Contains(err.Error(), `node "node-b"`) || !strings.Contains(err.Error(), id) {
			t.Errorf("node-a %s(%q) = %v, want ErrClientNotFound naming the client and node \"node-b\"", name, id, err)
		}
	}
	if closed, _, _ := ownFT.closedWith(); closed {
		t.Error("node-a closed its own client for a command about another node's")
	}
	if got := payloads(foreign); len(got) != 0 {
		t.Errorf("node-b's client got %q through node-a", got)
	}
	// On its own node the id works as before.
	if _, err := b.KickClient(id, "bye"); err != nil {
		t.Errorf("node-b KickClient(%q) = %v, want nil", id, err)
	}
	// An id of no node's form is plain not-found, as before.
	if _, err := a.KickClient("nobody", "bye"); !errors.Is(err, ErrClientNotFound) || strings.Contains(err.Error(), "node") {
		t.Errorf("KickClient(\"nobody\") = %v, want ErrClientNotFound that names no node", err)
	}
}
