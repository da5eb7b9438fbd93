// otsyncd's command line, environment variables (OTSYNC_*) and optional
// config file (TOML/INI, `--config FILE`), in that order of precedence.
//
// Thread safety: call once, from main.
#pragma once

#include <optional>
#include <string>

#include "otsync/server/options.hpp"

namespace otsync::server {

struct parsed_config {
  server_options options;
  bool print_config = false;
  std::string printed;  ///< the effective configuration, as a config file
};

/// Parses the arguments. On `--help`, a bad flag or a bad value it returns
/// nullopt and sets `exit_code` (0 for --help) after printing to stdout/stderr.
std::optional<parsed_config> parse_config(int argc, char** argv, int& exit_code);

}  // namespace otsync::server
