package authtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
)

// testImportAudit checks AuditImporter on a store that is one: imported
// events keep their Seqs (gaps included) and read back whole, by team
// too; events appended later are numbered above them; and a batch whose
// Seqs do not come after the trail's, or do not increase, appends none.
func testImportAudit(t *testing.T, s auth.Store) {
	imp, ok := s.(auth.AuditImporter)
	if !ok {
		t.Skip("the store is no AuditImporter")
	}
	a := newKey("a")
	mustCreate(t, s, a) // one event, numbered by the store
	first := mustAudit(t, s, auth.AuditQuery{})[0].Seq
	in := []auth.AuditEvent{
		{Seq: first + 10, Time: t0.Add(time.Second), Action: auth.AuditKeyRotated, KeyID: "a", Hint: a.Hint, TeamID: a.TeamID, ActorKeyID: "actor-1"},
		{Seq: first + 11, Time: t0.Add(2 * time.Second), Action: auth.AuditAuthFailed, Reason: "invalid_api_key", RemoteIP: "192.0.2.1", Count: 3},
		{Seq: first + 15, Time: t0.Add(3 * time.Second), Action: auth.AuditScopeDenied, KeyID: "a", TeamID: a.TeamID, Reason: "GET /x"},
	}
	if err := imp.ImportAudit(bg, slices.Clone(in)); err != nil {
		t.Fatalf("ImportAudit: %v", err)
	}
	if err := imp.ImportAudit(bg, nil); err != nil {
		t.Fatalf("ImportAudit(nil): %v", err)
	}
	all := mustAudit(t, s, auth.AuditQuery{})
	if len(all) != 4 {
		t.Fatalf("trail after an import of 3: %d events, want 4: %+v", len(all), all)
	}
	for i, want := range in {
		if got := all[2-i]; got.Seq != want.Seq || !sameEvent(got, &want) {
			t.Fatalf("imported event %d reads %+v, want %+v", i, got, want)
		}
	}
	team := mustAudit(t, s, auth.AuditQuery{TeamID: a.TeamID})
	if len(team) != 3 || team[0].Seq != first+15 || team[1].Seq != first+10 || team[2].Seq != first {
		t.Fatalf("the team's trail after the import: %+v", team)
	}

	for name, bad := range map[string][]auth.AuditEvent{
		"a seq the trail has":       {{Seq: first + 15, Time: t0, Action: auth.AuditKeyUpdated}},
		"a seq below the trail's":   {{Seq: first + 16, Time: t0, Action: auth.AuditKeyUpdated}, {Seq: first + 12, Time: t0, Action: auth.AuditKeyUpdated}},
		"seqs that do not increase": {{Seq: first + 20, Time: t0, Action: auth.AuditKeyUpdated}, {Seq: first + 20, Time: t0, Action: auth.AuditKeyUpdated}},
	} {
		if err := imp.ImportAudit(bg, bad); !errors.Is(err, auth.ErrAuditSeq) {
			t.Fatalf("ImportAudit of %s: %v, want ErrAuditSeq", name, err)
		}
	}
	if n := auditLen(t, s); n != 4 {
		t.Fatalf("refused imports appended events: %d, want 4", n)
	}
	ev := auth.AuditEvent{Time: t0.Add(4 * time.Second), Action: auth.AuditAuthFailed, Reason: "invalid_api_key"}
	if err := s.AppendAudit(bg, []auth.AuditEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if last := mustAudit(t, s, auth.AuditQuery{})[0]; last.Seq <= first+15 || !sameEvent(last, &ev) {
		t.Fatalf("an event appended after the import: %+v, want a seq above %d", last, first+15)
	}
}
