//go:build !linux

package main

import (
	"errors"
	"time"
)

// epollSupported is false: -reader goroutines is the only reader here.
const epollSupported = false

// pollerSet stands in for the Linux epoll reader; it is never created.
type pollerSet struct{}

func newPollerSet(*fleet, int) (*pollerSet, error) {
	return nil, errors.New("-reader epoll needs Linux")
}

func (*pollerSet) add(*polled) error          { return errors.New("-reader epoll needs Linux") }
func (*pollerSet) stop(time.Duration) bool    { return true }
func (*pollerSet) wait(<-chan time.Time) bool { return true }
