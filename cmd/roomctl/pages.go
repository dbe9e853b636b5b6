package main

import (
	"flag"
	"fmt"
	"slices"
)

// pageFlags are the list commands' flags. Without them a list follows
// every page: a person asking for the rooms wants all of them, not the
// first hundred.
type pageFlags struct {
	limit     int
	pageToken string
}

func (p *pageFlags) register(fs *flag.FlagSet, what string) {
	fs.IntVar(&p.limit, "limit", 0, "list at most this many "+what+" (0: all of them)")
	fs.StringVar(&p.pageToken, "page-token", "", "go on from where an earlier -limit stopped: the nextPageToken it gave")
}

// maxPageSize is the largest page roomd serves.
const maxPageSize = 1000

// collect calls fetch page after page, until the last page or p.limit
// items, and returns the items with the token of the page after them
// (empty when there is none). Pages end exactly at the limit, so that the
// token goes on from the next item.
func collect[T any](p pageFlags, fetch func(pageSize int32, pageToken string) ([]T, string, error)) ([]T, string, error) {
	if p.limit < 0 {
		return nil, "", usageErrorf("-limit must not be negative, got %d", p.limit)
	}
	var all []T
	token := p.pageToken
	for {
		size := maxPageSize
		if p.limit > 0 {
			size = min(size, p.limit-len(all))
		}
		items, next, err := fetch(int32(size), token)
		if err != nil {
			return nil, "", err
		}
		all = append(all, items...)
		token = next
		if token == "" || (p.limit > 0 && len(all) >= p.limit) {
			return all, token, nil
		}
	}
}

// partialAnswer gathers what the pages of a cluster-wide list said of the
// nodes that did not answer.
type partialAnswer struct {
	partial     bool
	unreachable []string
}

func (a *partialAnswer) add(partial bool, unreachable []string) {
	a.partial = a.partial || partial
	for _, n := range unreachable {
		if !slices.Contains(a.unreachable, n) {
			a.unreachable = append(a.unreachable, n)
		}
	}
}

// tellMore says, under a table, how to list what -limit left out.
func (s *session) tellMore(what, nextPageToken string) {
	if nextPageToken != "" && !s.json() {
		fmt.Fprintf(s.stderr, "roomctl: more %s after these: -page-token %s\n", what, nextPageToken)
	}
}
