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
