package dataset

import (
	"context"
	"fmt"
	"time"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
)

// DatasetUpdate changes a dataset; nil fields are kept. Its vector model
// cannot change: vectors of two models do not compare.
type DatasetUpdate struct {
	ID                  string
	Name, Intro, Avatar *string
	AgentModel          *string // "": back to Options.QA
}

// UpdateDataset applies u to a team's dataset and returns the dataset as
// stored. A refused change (a bad field, a dataset of another team or
// none) changes nothing.
func (s *Service) UpdateDataset(ctx context.Context, teamID string, u DatasetUpdate) (*Dataset, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	var name string
	if u.Name != nil {
		var err error
		if name, err = field.Name("name", *u.Name); err != nil {
			return nil, err
		}
	}
	if u.Intro != nil {
		if err := field.Text("intro", *u.Intro, MaxIntroBytes); err != nil {
			return nil, err
		}
	}
	if u.Avatar != nil {
		if err := field.Line("avatar", *u.Avatar, MaxAvatarBytes); err != nil {
			return nil, err
		}
	}
	if u.AgentModel != nil {
		if err := s.checkAgentModel(*u.AgentModel); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	return s.store.UpdateDataset(ctx, u.ID, func(d *Dataset) error {
		if d.TeamID != teamID {
			return ErrDatasetNotFound
		}
		if u.Name != nil {
			d.Name = name
		}
		if u.Intro != nil {
			d.Intro = *u.Intro
		}
		if u.Avatar != nil {
			d.Avatar = *u.Avatar
		}
		if u.AgentModel != nil {
			d.AgentModel = *u.AgentModel
		}
		d.UpdateTime = now
		return nil
	})
}

// CollectionUpdate changes a collection; nil fields are kept.
type CollectionUpdate struct {
	ID         string
	Name       *string
	Tags       *[]string
	CreateTime *time.Time
}

// MaxTags is how many tags a collection may have; each is a name, of 1
// to 200 characters.
const MaxTags = 100

// UpdateCollection applies u to a team's collection and returns the
// collection as stored. A refused change changes nothing.
func (s *Service) UpdateCollection(ctx context.Context, teamID string, u CollectionUpdate) (*Collection, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	var name string
	if u.Name != nil {
		var err error
		if name, err = field.Name("name", *u.Name); err != nil {
			return nil, err
		}
	}
	var tags []string
	if u.Tags != nil {
		var err error
		if tags, err = checkTags(*u.Tags); err != nil {
			return nil, err
		}
	}
	if u.CreateTime != nil && u.CreateTime.IsZero() {
		return nil, apierror.InvalidRequest("createTime", "must be a time")
	}
	now := time.Now().UTC()
	return s.store.UpdateCollection(ctx, u.ID, func(c *Collection) error {
		if c.TeamID != teamID {
			return ErrCollectionNotFound
		}
		if u.Name != nil {
			c.Name = name
		}
		if u.Tags != nil {
			c.Tags = tags
		}
		if u.CreateTime != nil {
			c.CreateTime = u.CreateTime.UTC()
		}
		c.UpdateTime = now
		return nil
	})
}

// checkTags checks a collection's tags and returns them trimmed; an empty
// list clears them (nil).
func checkTags(in []string) ([]string, error) {
	if len(in) > MaxTags {
		return nil, apierror.InvalidRequest("tags", "holds %d tags, more than %d", len(in), MaxTags)
	}
	var out []string
	for i, t := range in {
		t, err := field.Name(fmt.Sprintf("tags[%d]", i), t)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
