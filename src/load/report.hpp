// The run's report: one JSON object (see docs/load.md for the fields).
//
// Thread safety: pure.
#pragma once

#include <string>

#include "options.hpp"
#include "run.hpp"

namespace otsync::load {

std::string report_json(const options& opts, const run_result& result);

}  // namespace otsync::load
