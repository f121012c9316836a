package server_test

import (
	"testing"

	"github.com/chatgate/chatgate/server"
)

// An app the config file no longer declares where it was (removed, or
// moved to another team) is handed over to the API at the next start: it
// can be changed and deleted, instead of staying read-only for good.
func TestConfigAppMovedOrRemovedIsReleased(t *testing.T) {
	dir := t.TempDir()
	apps := func(team string) func(*server.Config) {
		return func(cfg *server.Config) {
			cfg.Apps = []server.AppConfig{{ID: "support", Name: "Support", Team: team}}
		}
	}
	base, stop := blStartStop(t, dir, apps("team-a"))
	_, keyA := blKey(t, base, map[string]any{"name": "a-admin", "teamId": "team-a", "scopes": []string{"admin"}})
	if env := blCallAny(t, "DELETE", base+"/api/core/app/del?appId=support", keyA, ""); env.Code != 409 || env.StatusText != "app_managed_by_config" {
		t.Fatalf("deleting a config app: %+v", env)
	}
	stop()

	base = blStart(t, dir, apps("team-b")) // the file moves it to team-b
	var a struct {
		Source string `json:"source"`
		TeamID string `json:"teamId"`
	}
	blCall(t, "GET", base+"/api/core/app/detail?appId=support", keyA, "", &a)
	if a.Source != "" || a.TeamID != "team-a" {
		t.Fatalf("team-a's app after the move: %+v; want it kept, managed by the API", a)
	}
	blCall(t, "PUT", base+"/api/core/app/update", keyA, `{"id":"support","name":"Old support"}`, nil)
	blCall(t, "DELETE", base+"/api/core/app/del?appId=support", keyA, "", nil)
	_, keyB := blKey(t, base, map[string]any{"name": "b-admin", "teamId": "team-b", "scopes": []string{"admin"}})
	blCall(t, "GET", base+"/api/core/app/detail?appId=support", keyB, "", &a)
	if a.Source != "config" || a.TeamID != "team-b" {
		t.Fatalf("team-b's app: %+v; want the config's", a)
	}
}
