#include "otsync/server/log.hpp"

#include <atomic>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace otsync::server::log {
namespace {

std::atomic<bool> json_lines{false};

spdlog::level::level_enum to_spdlog(level lvl) {
  return static_cast<spdlog::level::level_enum>(lvl);
}

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

bool setup(std::string_view level_name, std::string_view format) {
  auto lvl = spdlog::level::from_str(std::string(level_name));
  if (lvl == spdlog::level::off && level_name != "off") return false;
  if (format != "text" && format != "json") return false;
  auto logger = spdlog::stderr_logger_mt("otsyncd");
  spdlog::set_default_logger(logger);
  json_lines = format == "json";
  // JSON lines carry their own timestamp and level fields.
  logger->set_pattern(json_lines ? "%v" : "%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  return true;
}

bool enabled(level lvl) {
  return spdlog::default_logger_raw()->should_log(to_spdlog(lvl));
}

void write(level lvl, std::string_view event, std::initializer_list<field> fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(to_spdlog(lvl))) return;
  std::string line;
  if (json_lines) {
    nlohmann::json object;
    auto now = std::chrono::system_clock::now();
    object["ts"] = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    object["level"] = spdlog::level::to_string_view(to_spdlog(lvl)).data();
    object["event"] = event;
    for (const auto& [key, value] : fields) object[std::string(key)] = value;
    line = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line.assign(event);
    for (const auto& [key, value] : fields) {
      line += ' ';
      line += key;
      line += '=';
      if (needs_quotes(value)) {
        line += nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      } else {
        line += value;
      }
    }
  }
  logger->log(to_spdlog(lvl), "{}", line);
}

}  // namespace otsync::server::log
