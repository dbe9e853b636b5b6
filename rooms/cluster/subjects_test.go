package cluster

import "testing"

func TestRoomTokenIsOneSubjectToken(t *testing.T) {
	for _, id := range []string{"lobby", "a.b", "...", "x:y-z_1", ".a."} {
		tok := roomToken(id)
		for _, bad := range []byte{'.', '*', '>', ' '} {
			for i := range len(tok) {
				if tok[i] == bad {
					t.Errorf("token %q of %q holds %q", tok, id, bad)
				}
			}
		}
		if back := roomOfToken(tok); back != id {
			t.Errorf("%q -> %q -> %q", id, tok, back)
		}
	}
}
