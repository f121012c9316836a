package dataset

import (
	"slices"
	"strings"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/field"
)

// QAModels finds the QA model a dataset's agentModel names.
type QAModels interface {
	// QAModel returns the Generator of name, false when there is none.
	QAModel(name string) (Generator, bool)
}

// QAModelMap is QAModels from a fixed set of names.
type QAModelMap map[string]Generator

// QAModel implements QAModels.
func (m QAModelMap) QAModel(name string) (Generator, bool) {
	g, ok := m[name]
	return g, ok
}

// checkAgentModel refuses an agentModel that names no QA model, so that a
// dataset never holds a name its QA-mode training would fail on.
func (s *Service) checkAgentModel(name string) error {
	if name == "" {
		return nil
	}
	if err := field.Line("agentModel", name, 200); err != nil {
		return err
	}
	if s.opts.QAModels != nil {
		if _, ok := s.opts.QAModels.QAModel(name); ok {
			return nil
		}
	}
	m, _ := s.opts.QAModels.(QAModelMap)
	if len(m) == 0 {
		return apierror.InvalidRequest("agentModel", "%q is not a configured QA model; leave agentModel empty for the default", name)
	}
	known := make([]string, 0, len(m))
	for n := range m {
		known = append(known, n)
	}
	slices.Sort(known)
	return apierror.InvalidRequest("agentModel", "%q is not a configured QA model (have: %s)", name, strings.Join(known, ", "))
}

// anyQA reports whether some dataset could train in QA mode; which one a
// dataset uses is qaFor's to say, once it is loaded.
func (s *Service) anyQA() bool { return s.opts.QA != nil || s.opts.QAModels != nil }

// qaFor is the Generator of ds's QA-mode training: its agentModel's, else
// the default. An agentModel the config no longer has fails the item for
// good with a message naming it, rather than training with another model
// than the dataset asked for.
func (s *Service) qaFor(ds *Dataset) (Generator, error) {
	if ds.AgentModel != "" {
		if s.opts.QAModels != nil {
			if g, ok := s.opts.QAModels.QAModel(ds.AgentModel); ok {
				return g, nil
			}
		}
		return nil, ErrQAModelUnavailable.WithMessage("QA mode needs the dataset's agentModel %q, which is no longer configured", ds.AgentModel)
	}
	if s.opts.QA == nil {
		return nil, ErrQAModelUnavailable
	}
	return s.opts.QA, nil
}
