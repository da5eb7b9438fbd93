// Folds a long sequence of ops into one op, as repeated `compose` would,
// without rewriting the whole accumulated op for every step.
//
// Thread safety: one object needs external synchronisation.
#pragma once

#include <cstdint>
#include <memory>
#include <system_error>

#include "otsync/ot/op.hpp"

namespace otsync::ot {

/// The composition of every op fed to it so far.
///
/// `compose(a); compose(b); …; finish()` equals `compose(compose(a, b), …)`
/// component for component. The accumulated op is kept as a balanced tree of
/// pieces indexed by output position, so one step costs O(k log n) for a step
/// of k components against an accumulated op of n pieces, where repeated
/// `compose` costs O(n) per step (quadratic over a long editing session).
class op_composer {
 public:
  op_composer();
  ~op_composer();
  op_composer(op_composer&&) noexcept;
  op_composer& operator=(op_composer&&) noexcept;
  op_composer(const op_composer&) = delete;
  op_composer& operator=(const op_composer&) = delete;

  /// Appends `next` (checked first; on error nothing changes). Fails with
  /// `errc::length_out_of_range` once the lengths of all ops fed reach 2^53.
  std::error_code compose(const op& next);
  /// The accumulated op in canonical form.
  [[nodiscard]] op finish() const;
  /// Number of stored pieces (for tests and benchmarks).
  [[nodiscard]] std::size_t piece_count() const noexcept;

 private:
  struct tree;
  std::unique_ptr<tree> tree_;
};

}  // namespace otsync::ot
