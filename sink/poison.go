package sink

// Poison isolation (ARCHITECTURE.md, guarantee 6). A batch that fails on
// an event's fault (classEvent) is split in two and each half applied on
// its own, in order, down to the event at fault, which becomes a dead
// letter (apply.go). Halves end between buffer messages where they can.
// Inside one batch message they cannot, and then the first half commits
// without moving the checkpoint (the checkpoint is a stream sequence and
// covers whole messages, plan): the events apply in order as they would
// from messages of one event each, and a crash before the message's last
// half commits applies the first half again, which the version guard makes
// write no row (and a dead letter recorded in it is not recorded twice,
// insertEventDeadLetter).

// split returns where to split msgs (at least two events) for isolation:
// the boundary between buffer messages nearest the middle, or the middle
// when msgs are the events of one message.
func split(msgs []message) int {
	mid := len(msgs) / 2
	for d := 0; d <= mid; d++ {
		for _, i := range [2]int{mid - d, mid + d} {
			if i > 0 && i < len(msgs) && msgs[i].seq != msgs[i-1].seq {
				return i
			}
		}
	}
	return mid
}
