// What a connection may do with documents: the read and write patterns a
// bearer token grants (its `otsync` claim) or, without authentication,
// everything. A pattern is `COLLECTION/DOC`, split at its first `/` (doc ids
// may contain `/`, collection names may not), where `*` in either part
// matches any run of characters, `/` included; a bare `*` means every
// document. Writing implies reading. Rules grant nothing unless a pattern
// says so: a token without the claim may open no document.
//
// Thread safety: immutable after construction; every member is const.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace otsync::auth {

/// Bounds on what a token may carry (more is refused as bad claims): far
/// above any real grant, and they keep one check at most 256 × 512 × id
/// length character comparisons per list.
inline constexpr std::size_t max_access_patterns = 256;
inline constexpr std::size_t max_access_pattern_bytes = 512;

class access_rules {
 public:
  /// Grants nothing.
  access_rules() = default;
  /// Grants everything (`--auth none`).
  [[nodiscard]] static access_rules allow_all();
  /// Rules granting reading on `read` and reading and writing on `write`, or
  /// why the patterns are refused (more than `max_access_patterns` in a
  /// list, a pattern empty, longer than `max_access_pattern_bytes` or
  /// without `/` and not `*`). The message quotes no pattern: they come from
  /// tokens.
  [[nodiscard]] static std::variant<access_rules, std::string> from_patterns(std::span<const std::string> read,
                                                                             std::span<const std::string> write);

  [[nodiscard]] bool may_read(std::string_view collection, std::string_view id) const noexcept;
  [[nodiscard]] bool may_write(std::string_view collection, std::string_view id) const noexcept;
  /// Whether every document may be read (a `*/*` grant, or `allow_all`).
  [[nodiscard]] bool reads_everything() const noexcept;

 private:
  // Both parts are globs, runs of `*` collapsed to one.
  struct pattern {
    std::string collection;
    std::string id;
  };
  [[nodiscard]] static bool any_matches(const std::vector<pattern>& patterns, std::string_view collection,
                                        std::string_view id) noexcept;

  std::vector<pattern> read_;
  std::vector<pattern> write_;
};

/// Whether `text` matches `glob`, where `*` matches any run of characters
/// (empty included) and every other character itself. Iterative, O(glob ×
/// text) at worst, no allocation.
[[nodiscard]] bool glob_matches(std::string_view glob, std::string_view text) noexcept;

}  // namespace otsync::auth
