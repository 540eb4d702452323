package azure

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestAmountIsExact: an amount summed from billionths, rationals, hours and
// shares of a day is always the rational its parts add up to, and prints
// as that rational rounded, whatever way it holds it.
func TestAmountIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	nanos := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return rng.Int64N(1000)
		case 1:
			return rng.Int64N(1e15)
		case 2:
			return 1<<62 + rng.Int64N(1<<60) // past what billionths hold, once summed
		}
		return rng.Int64N(1e12)
	}
	weight := func() *big.Rat {
		switch rng.IntN(5) {
		case 0:
			return nil
		case 1:
			return big.NewRat(rng.Int64N(86400)+1, 86400*(rng.Int64N(3)+1))
		case 2:
			return big.NewRat(rng.Int64N(1<<40)+1, 1<<40+rng.Int64N(1<<40)) // a large denominator
		case 3:
			return big.NewRat(rng.Int64N(7)+1, 7)
		}
		return big.NewRat(rng.Int64N(dayNanos)+1, dayNanos)
	}
	for range 2000 {
		var a amount
		want := new(big.Rat)
		for range rng.IntN(40) {
			var b amount
			switch rng.IntN(4) {
			case 0:
				b = amount{fixed: fixed{nanos: nanos()}}
			case 1:
				b = hoursOf(rng.Int64N(1e15)).a
			case 2:
				b = amount{rat: big.NewRat(rng.Int64N(1e12), rng.Int64N(1e9)+1)}
			default:
				b = amount{fixed: fixed{nanos: nanos()}}
				b.add(hoursOf(rng.Int64N(1e13)).a)
			}
			w := weight()
			bw := b.times(w)
			exact := b.Rat()
			if w != nil {
				exact.Mul(exact, w)
			}
			if bw.Rat().Cmp(exact) != 0 {
				t.Fatalf("%s × %v = %s, want %s", b.Rat().RatString(), w, bw.Rat().RatString(), exact.RatString())
			}
			a.add(bw)
			for _, x := range []amount{bw, a} {
				if x.den != 0 && !(0 <= x.num && x.num < x.den) || x.den == 0 && x.num != 0 {
					t.Fatalf("fraction %d/%d is not one of a billionth", x.num, x.den)
				}
			}
			want.Add(want, exact)
			if a.Rat().Cmp(want) != 0 {
				t.Fatalf("sum %s, want %s", a.Rat().RatString(), want.RatString())
			}
			if got, exact := (Money{a}).String(), round2(want); got != exact {
				t.Fatalf("%s prints as %s, want %s", want.RatString(), got, exact)
			}
		}
		if a.isZero() != (want.Sign() == 0) {
			t.Fatalf("isZero of %s is %v", want.RatString(), a.isZero())
		}
	}
}

// TestMoneyAtTheTopOfBillionths: an amount of billionths near the most
// they hold prints as its rational does.
func TestMoneyAtTheTopOfBillionths(t *testing.T) {
	for _, n := range []int64{math.MaxInt64, math.MaxInt64 - 4_999_999, math.MaxInt64 - 5_000_000, math.MaxInt64 - 5_000_001} {
		m := Money{amount{fixed: fixed{nanos: n}}}
		if got, want := m.String(), round2(m.Rat()); got != want {
			t.Errorf("%d billionths print as %s, want %s", n, got, want)
		}
	}
}
