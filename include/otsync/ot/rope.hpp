// A text document stored as a balanced tree of UTF-8 chunks, indexed by code point.
//
// Thread safety: distinct objects may be used concurrently; one object needs
// external synchronisation (it is owned by one document actor).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace otsync::ot {

/// A UTF-8 string indexed by Unicode code point, with O(log n) insert, erase
/// and seek, and no whole-document copy per edit.
///
/// Positions and counts are in code points. Inputs must be valid UTF-8
/// (callers validate with `unicode::validate_utf8`); positions past the end are
/// clamped, so the rope itself never fails.
class rope {
 public:
  rope() noexcept;
  explicit rope(std::string_view utf8);
  rope(const rope& other);
  rope(rope&& other) noexcept;
  rope& operator=(const rope& other);
  rope& operator=(rope&& other) noexcept;
  ~rope();

  /// Length in code points.
  [[nodiscard]] std::size_t size() const noexcept;
  /// Length in UTF-8 bytes.
  [[nodiscard]] std::size_t size_bytes() const noexcept;
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  /// Inserts `utf8` (which holds `code_points` code points) before code point `pos`.
  void insert(std::size_t pos, std::string_view utf8, std::size_t code_points);
  /// Inserts `utf8`, counting its code points.
  void insert(std::size_t pos, std::string_view utf8);
  /// Removes up to `count` code points starting at `pos` (cut short at the end).
  void erase(std::size_t pos, std::size_t count);
  void clear() noexcept;

  /// Copies `count` code points starting at `pos` (clamped to the end).
  [[nodiscard]] std::string substr(std::size_t pos, std::size_t count) const;
  /// The whole text.
  [[nodiscard]] std::string to_string() const;

  /// Calls `fn(std::string_view)` for each stored chunk, in order.
  template <class Fn>
  void for_each_chunk(Fn&& fn) const {
    for_each_chunk_impl(&call_chunk_fn<Fn>, &fn);
  }

  /// Checks the internal invariants (counts, UTF-8 chunk boundaries, balance);
  /// for tests.
  [[nodiscard]] bool check_invariants() const;

 private:
  struct node;
  using chunk_fn = void (*)(void* context, std::string_view chunk);
  template <class Fn>
  static void call_chunk_fn(void* context, std::string_view chunk) {
    (*static_cast<Fn*>(context))(chunk);
  }
  void for_each_chunk_impl(chunk_fn fn, void* context) const;

  node* root_ = nullptr;
};

bool operator==(const rope& a, std::string_view b);

}  // namespace otsync::ot
