#include "otsync/auth/access.hpp"

#include <algorithm>

#include <utility>

namespace otsync::auth {
namespace {

std::string collapse_stars(std::string_view glob) {
  std::string out;
  out.reserve(glob.size());
  for (char c : glob) {
    if (c == '*' && !out.empty() && out.back() == '*') continue;
    out.push_back(c);
  }
  return out;
}

}  // namespace

bool glob_matches(std::string_view glob, std::string_view text) noexcept {
  // Two pointers; on a mismatch, go back to the last star and let it take
  // one more character. Only the last star needs retrying: whatever earlier
  // stars matched, a later star can absorb as well.
  constexpr std::size_t no_star = std::string_view::npos;
  std::size_t g = 0;
  std::size_t t = 0;
  std::size_t star = no_star;
  std::size_t star_text = 0;  // where the text stood when the last star began
  while (t < text.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      star_text = t;
    } else if (g < glob.size() && glob[g] == text[t]) {
      ++g;
      ++t;
    } else if (star != no_star) {
      g = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

access_rules access_rules::allow_all() {
  access_rules rules;
  rules.write_.push_back({"*", "*"});
  return rules;
}

bool access_rules::reads_everything() const noexcept {
  auto everything = [](const pattern& p) { return p.collection == "*" && p.id == "*"; };
  return std::any_of(read_.begin(), read_.end(), everything) || std::any_of(write_.begin(), write_.end(), everything);
}

std::variant<access_rules, std::string> access_rules::from_patterns(std::span<const std::string> read,
                                                                    std::span<const std::string> write) {
  // Returns why `texts` are refused, or an empty string.
  auto compile = [](std::span<const std::string> texts, std::string_view list_name, std::vector<pattern>& out) {
    auto name = std::string(list_name);
    if (texts.size() > max_access_patterns) {
      return name + ": " + std::to_string(texts.size()) + " patterns, at most " + std::to_string(max_access_patterns) +
             " are accepted";
    }
    out.reserve(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      std::string_view text = texts[i];
      auto where = name + "[" + std::to_string(i) + "]";
      if (text.empty()) return where + ": an empty pattern";
      if (text.size() > max_access_pattern_bytes) {
        return where + ": a pattern of " + std::to_string(text.size()) + " bytes, at most " +
               std::to_string(max_access_pattern_bytes) + " are accepted";
      }
      if (text == "*") {
        out.push_back({"*", "*"});
        continue;
      }
      auto slash = text.find('/');
      if (slash == std::string_view::npos) return where + ": neither COLLECTION/DOC (no '/') nor '*'";
      out.push_back({collapse_stars(text.substr(0, slash)), collapse_stars(text.substr(slash + 1))});
    }
    return std::string();
  };
  access_rules rules;
  if (auto error = compile(read, "read", rules.read_); !error.empty()) return error;
  if (auto error = compile(write, "write", rules.write_); !error.empty()) return error;
  return rules;
}

bool access_rules::any_matches(const std::vector<pattern>& patterns, std::string_view collection,
                               std::string_view id) noexcept {
  for (const auto& p : patterns) {
    if (glob_matches(p.collection, collection) && glob_matches(p.id, id)) return true;
  }
  return false;
}

bool access_rules::may_read(std::string_view collection, std::string_view id) const noexcept {
  return any_matches(read_, collection, id) || any_matches(write_, collection, id);
}

bool access_rules::may_write(std::string_view collection, std::string_view id) const noexcept {
  return any_matches(write_, collection, id);
}

}  // namespace otsync::auth
