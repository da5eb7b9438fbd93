// otsyncd: parse the configuration, set up logging, run the server.
#include <cstdio>
#include <iostream>

#include "otsync/server/config.hpp"
#include "otsync/server/log.hpp"
#include "otsync/server/server.hpp"

int main(int argc, char** argv) {
  using namespace otsync::server;
  int exit_code = 0;
  auto config = parse_config(argc, argv, exit_code);
  if (!config) return exit_code;
  if (config->print_config) {
    std::cout << config->printed;
    return 0;
  }
  if (!log::setup(config->options.log_level, config->options.log_format)) {
    std::cerr << "otsyncd: bad --log-level or --log-format\n";
    return 2;
  }
  try {
    server srv(config->options);
    if (auto error = srv.start(); !error.empty()) {
      log::error("startup_failed", {{"error", error}});
      std::cerr << "otsyncd: " << error << '\n';
      return 1;
    }
    return srv.run();
  } catch (const std::exception& e) {
    log::error("fatal", {{"error", e.what()}});
    std::cerr << "otsyncd: fatal: " << e.what() << '\n';
    return 1;
  }
}
