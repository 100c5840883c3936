package leader

// Waits is how many times e began to wait on its clock: a test stepping a
// fake clock steps once the elector waits again.
func Waits(e *Elector) int64 { return e.waits.Load() }
