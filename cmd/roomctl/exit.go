package main

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes, for scripts (listed in roomctl -h and the README). NotFound
// and unreachable have codes of their own because a script acts on them:
// create what is missing, retry what could not be reached.
const (
	exitOK          = 0 // done
	exitFailed      = 1 // the server refused or failed the call
	exitUsage       = 2 // a bad command line, or a local file that cannot be used
	exitNotFound    = 3 // gRPC NotFound: no such room, client or ban
	exitUnreachable = 4 // gRPC Unavailable or DeadlineExceeded: no answer within -timeout
)

const exitCodesHelp = `Exit codes:
  0  done (a watch: interrupted, or the room was deleted)
  1  the server refused or failed the call; the message names the gRPC code,
     as in "roomctl: InvalidArgument: ..."
  2  usage: a bad command, flag or argument, or a local file that cannot be read
  3  not found: no such room, client or ban (gRPC NotFound)
  4  roomd could not be reached, or did not answer within -timeout
     (gRPC Unavailable or DeadlineExceeded)
`

// usageError is a mistake on the command line (or in a file it names),
// found before anything was asked of the server.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// fail prints err as "roomctl: ..." and returns its exit code; nil is
// exitOK. A gRPC error is printed with its code's name, which is what a
// person looks up and what the exit code was chosen by.
func fail(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "roomctl:", ue.msg)
		return exitUsage
	}
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintln(stderr, "roomctl:", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "roomctl: %s: %s%s\n", st.Code(), st.Message(), hint(st.Code()))
	switch st.Code() {
	case codes.NotFound:
		return exitNotFound
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnreachable
	}
	return exitFailed
}

// hint says what to change for the codes whose fix is on this side.
func hint(c codes.Code) string {
	switch c {
	case codes.Unauthenticated:
		return " (give roomd's admin token with -token, -token-file or ROOMCTL_TOKEN)"
	case codes.Unavailable:
		return " (is roomd serving its admin gRPC API at -addr, with TLS exactly when -tls-ca is given?)"
	case codes.DeadlineExceeded:
		return " (no answer within -timeout)"
	}
	return ""
}
