package errcode

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"roomd/rooms"
)

// Every exported error of package rooms, by name. TestSentinelListIsComplete
// keeps this list honest; TestEverySentinelHasARow keeps the table honest.
var sentinels = map[string]error{
	"ErrInvalidRoomID":   rooms.ErrInvalidRoomID,
	"ErrInvalidArgument": rooms.ErrInvalidArgument,
	"ErrRoomExists":      rooms.ErrRoomExists,
	"ErrRoomNotFound":    rooms.ErrRoomNotFound,
	"ErrClientNotFound":  rooms.ErrClientNotFound,
	"ErrRoomFull":        rooms.ErrRoomFull,
	"ErrBanned":          rooms.ErrBanned,
	"ErrBanNotFound":     rooms.ErrBanNotFound,
	"ErrNoUserID":        rooms.ErrNoUserID,
	"ErrLimit":           rooms.ErrLimit,
	"ErrRoomQuota":       rooms.ErrRoomQuota,
	"ErrGap":             rooms.ErrGap,
	"ErrNotJoined":       rooms.ErrNotJoined,
	"ErrAlreadyJoined":   rooms.ErrAlreadyJoined,
	"ErrNoPresence":      rooms.ErrNoPresence,
	"ErrClosed":          rooms.ErrClosed,
	"ErrUnavailable":     rooms.ErrUnavailable,
	"ErrWatcherTooSlow":  rooms.ErrWatcherTooSlow,
}

// A new sentinel in package rooms must be added above (and so to the table).
func TestSentinelListIsComplete(t *testing.T) {
	files, err := filepath.Glob("../*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range parsed.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.VAR {
				continue
			}
			for _, spec := range gen.Specs {
				for _, name := range spec.(*ast.ValueSpec).Names {
					if name.IsExported() && strings.HasPrefix(name.Name, "Err") {
						declared = append(declared, name.Name)
					}
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no Err variables in package rooms")
	}
	for _, name := range declared {
		if _, ok := sentinels[name]; !ok {
			t.Errorf("rooms.%s is not in this test's sentinels, so the table is not checked for it", name)
		}
	}
	for name := range sentinels {
		if !slices.Contains(declared, name) {
			t.Errorf("sentinels names rooms.%s, which package rooms does not declare", name)
		}
	}
}

func TestEverySentinelHasARow(t *testing.T) {
	for name, kind := range sentinels {
		// Its own row: a kind that wraps another must not borrow the
		// other's codes by accident.
		if !slices.ContainsFunc(table, func(r row) bool { return r.kind == kind }) {
			t.Errorf("rooms.%s has no row in the table", name)
		}
	}
}

// First match wins, so a row that a row above it also matches is dead.
func TestNoRowIsShadowed(t *testing.T) {
	for i, r := range table {
		for _, above := range table[:i] {
			if errors.Is(r.kind, above.kind) {
				t.Errorf("row %d (%v) is matched first by the row for %v: move it up", i, r.kind, above.kind)
			}
		}
	}
}

func TestOfFollowsWrapping(t *testing.T) {
	for _, r := range table {
		if got := Of(fmt.Errorf("room %q: %w", "r", r.kind)); got != r.Codes {
			t.Errorf("Of(wrapped %v) = %+v, want %+v", r.kind, got, r.Codes)
		}
	}
	if got := Of(errors.New("something else")); got != Internal {
		t.Errorf("Of(an unknown error) = %+v, want Internal", got)
	}
}
