package workers

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRunNeverWaits: functions that block do not hold up the others, and
// every function runs once.
func TestRunNeverWaits(t *testing.T) {
	p := New()
	release := make(chan struct{})
	var blocked sync.WaitGroup
	for range 8 {
		blocked.Add(1)
		p.Run(func() {
			defer blocked.Done()
			<-release
		})
	}
	var ran atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		p.Run(func() {
			ran.Add(1)
			wg.Done()
		})
	}
	wg.Wait() // would hang if a Run waited for a blocked worker
	assert.Equal(t, int32(100), ran.Load())
	close(release)
	blocked.Wait()
}
