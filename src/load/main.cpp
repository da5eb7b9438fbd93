// otsync-load: a ShareDB-protocol load generator (see docs/load.md).
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>

#include "options.hpp"
#include "report.hpp"
#include "run.hpp"

int main(int argc, char** argv) {
  otsync::load::options opts;
  if (auto code = otsync::load::parse_options(argc, argv, opts)) return *code;
  try {
    otsync::load::run_result result;
    if (int code = otsync::load::run_load(opts, result); code != 0) return code;
    std::string report = otsync::load::report_json(opts, result);
    std::cout << report << std::endl;
    if (!opts.json_file.empty()) {
      std::ofstream file(opts.json_file, std::ios::trunc);
      file << report << '\n';
      if (!file) {
        std::fprintf(stderr, "otsync-load: cannot write %s\n", opts.json_file.c_str());
        return 1;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "otsync-load: %s\n", e.what());
    return 1;
  }
}
