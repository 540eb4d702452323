package postgres_test

import (
	"testing"

	"github.com/palproject/pal/internal/store/storetest"
)

func TestStore(t *testing.T) { storetest.Exercise(t, storetest.Backends()[1].Fresh) }
