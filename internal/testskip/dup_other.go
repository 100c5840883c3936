//go:build !linux

package testskip

import (
	"errors"
	"os"
)

// shareStderr needs pidfd_getfd(2), which only Linux has.
func shareStderr(int) (*os.File, error) { return nil, errors.ErrUnsupported }
