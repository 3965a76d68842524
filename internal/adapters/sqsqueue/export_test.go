package sqsqueue

import "time"

// SetBackoff sets the pause before the first resend.
func (q *Queue) SetBackoff(d time.Duration) { q.backoff = d }
