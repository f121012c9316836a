package pgstore

import "time"

// Listening reports whether a Watch of s is connected and listening.
func Listening(s *Store) bool {
	s.watched.mu.Lock()
	defer s.watched.mu.Unlock()
	return s.watched.listening > 0
}

// AgeWatched makes every app s keeps d older.
func AgeWatched(s *Store, d time.Duration) {
	s.watched.mu.Lock()
	defer s.watched.mu.Unlock()
	for k, e := range s.watched.apps {
		e.at = e.at.Add(-d)
		s.watched.apps[k] = e
	}
}

// Heard returns what moves with every change s hears of.
func Heard(s *Store) uint64 { return s.watched.generation() }
