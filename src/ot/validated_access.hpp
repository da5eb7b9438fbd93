// Marks ops built by the OT core from validated ops as validated themselves.
// Private to src/ot: nothing outside the core may vouch for an op.
#pragma once

#include "otsync/ot/op.hpp"

namespace otsync::ot::detail {

struct validated_access {
  static op finish(op_builder&& builder) { return std::move(builder).finish_validated(); }
};

}  // namespace otsync::ot::detail
