// The text-unicode op: a walk over the old document made of skip, insert and
// delete components, every length in Unicode code points.
//
// Thread safety: plain value types.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace otsync::ot {

namespace detail {
struct validated_access;  // lets transform and compose mark their results; defined in src/ot/
}  // namespace detail

enum class component_kind : std::uint8_t { skip, insert, erase };

/// A read-only view of a component (or of a slice of one); what the take/peek
/// walk hands around without copying text.
struct component_view {
  component_kind kind = component_kind::skip;
  std::uint64_t length = 0;  ///< code points
  std::string_view text;     ///< insert text, or the recorded text of a delete
  bool has_text = false;     ///< false for skips and numeric deletes
};

/// One op component: skip N (`N`), insert text (`"text"`), delete N (`{d:N}`)
/// or delete recorded text (`{d:"text"}`).
///
/// A component may hold values `check` rejects (zero lengths, bad UTF-8): ops
/// arrive from clients as they are, and `check` is what judges them.
class component {
 public:
  static component skip(std::uint64_t count) noexcept { return {component_kind::skip, count, {}, false}; }
  static component insert(std::string text);
  static component insert(std::string text, std::uint64_t code_points) noexcept {
    return {component_kind::insert, code_points, std::move(text), true};
  }
  static component erase(std::uint64_t count) noexcept { return {component_kind::erase, count, {}, false}; }
  static component erase(std::string text);
  static component erase(std::string text, std::uint64_t code_points) noexcept {
    return {component_kind::erase, code_points, std::move(text), true};
  }
  /// A component holding a copy of `view`'s text. Inserts always carry text;
  /// skips never do, so no component has an inconsistent form.
  explicit component(const component_view& view)
      : length_(view.length),
        kind_(view.kind),
        has_text_(view.kind == component_kind::insert || (view.kind == component_kind::erase && view.has_text)) {
    if (has_text_) text_ = view.text;
  }

  [[nodiscard]] component_kind kind() const noexcept { return kind_; }
  [[nodiscard]] bool is_skip() const noexcept { return kind_ == component_kind::skip; }
  [[nodiscard]] bool is_insert() const noexcept { return kind_ == component_kind::insert; }
  [[nodiscard]] bool is_erase() const noexcept { return kind_ == component_kind::erase; }
  /// Code points skipped, inserted or deleted.
  [[nodiscard]] std::uint64_t length() const noexcept { return length_; }
  /// Inserted text, or the recorded text of a `{d:"text"}` delete; empty otherwise.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  /// True for inserts and for deletes that record their text.
  [[nodiscard]] bool has_text() const noexcept { return has_text_; }
  [[nodiscard]] component_view view() const noexcept { return {kind_, length_, text_, has_text_}; }

  friend bool operator==(const component&, const component&) = default;

 private:
  friend class op_builder;  // merges neighbours in place

  component(component_kind kind, std::uint64_t length, std::string text, bool has_text) noexcept
      : text_(std::move(text)), length_(length), kind_(kind), has_text_(has_text) {}

  std::string text_;
  std::uint64_t length_ = 0;
  component_kind kind_ = component_kind::skip;
  bool has_text_ = false;
};

/// An op: its list of components, `[]` being the no-op. A distinct type (not
/// an alias of std::vector) so that calls like `apply(doc, op)` never find
/// std::apply through argument-dependent lookup.
///
/// An op remembers whether it passed `validate` (or was built by transform or
/// compose from ops that had), so the full check, UTF-8 scan included, runs
/// once per op rather than once per transform. Every change forgets it, which
/// is why components are read-only here.
class op {
 public:
  using value_type = component;
  using const_iterator = std::vector<component>::const_iterator;

  op() = default;
  op(std::initializer_list<component> components) : components_(components) {}
  explicit op(std::vector<component> components) noexcept : components_(std::move(components)) {}

  [[nodiscard]] std::size_t size() const noexcept { return components_.size(); }
  [[nodiscard]] bool empty() const noexcept { return components_.empty(); }
  [[nodiscard]] const component& operator[](std::size_t i) const noexcept { return components_[i]; }
  [[nodiscard]] const component& back() const noexcept { return components_.back(); }
  [[nodiscard]] const_iterator begin() const noexcept { return components_.begin(); }
  [[nodiscard]] const_iterator end() const noexcept { return components_.end(); }
  [[nodiscard]] const std::vector<component>& components() const noexcept { return components_; }

  void reserve(std::size_t n) { components_.reserve(n); }
  void push_back(component c) {
    components_.push_back(std::move(c));
    validated_ = false;
  }
  void pop_back() noexcept {
    components_.pop_back();
    validated_ = false;
  }
  void clear() noexcept {
    components_.clear();
    validated_ = false;
  }

  /// True when the op is known to pass `check`.
  [[nodiscard]] bool validated() const noexcept { return validated_; }

  friend bool operator==(const op& a, const op& b) noexcept { return a.components_ == b.components_; }

 private:
  friend class op_builder;
  friend struct detail::validated_access;
  friend std::error_code validate(op& operation) noexcept;

  std::vector<component> components_;
  bool validated_ = false;
};

/// Runs `check` and, when it passes, records that in `operation`, so the
/// checks inside transform, compose and apply cost nothing for it.
std::error_code validate(op& operation) noexcept;

/// Builds an op in canonical form, exactly as ot-text-unicode's `append`:
/// empty components are dropped, neighbours of one kind merge (skips add,
/// inserts concatenate, deletes concatenate when both record text and
/// otherwise become a numeric sum), and `finish` drops a trailing skip.
class op_builder {
 public:
  op_builder() = default;
  explicit op_builder(std::size_t reserve) { op_.reserve(reserve); }

  op_builder& skip(std::uint64_t count) { return append(component_view{component_kind::skip, count, {}, false}); }
  op_builder& insert(std::string_view text);
  op_builder& insert(std::string_view text, std::uint64_t code_points) {
    return append(component_view{component_kind::insert, code_points, text, true});
  }
  op_builder& erase(std::uint64_t count) { return append(component_view{component_kind::erase, count, {}, false}); }
  op_builder& erase_text(std::string_view text);
  op_builder& erase_text(std::string_view text, std::uint64_t code_points) {
    return append(component_view{component_kind::erase, code_points, text, true});
  }
  op_builder& append(const component_view& part) {
    if (part.length == 0) return *this;  // a no-op component
    total_length_ += part.length;
    if (op_.empty() || op_.back().kind() != part.kind) {
      // Constructed in place: this is the hot path of transform and compose.
      op_.components_.emplace_back(part);
      return *this;
    }
    merge_into_last(part);
    return *this;
  }
  op_builder& append(const component& part) { return append(part.view()); }

  /// The op built so far, trailing skip included.
  [[nodiscard]] const op& components() const noexcept { return op_; }
  /// Drops a trailing skip and hands the op over.
  [[nodiscard]] op finish() &&;

 private:
  friend struct detail::validated_access;
  /// As `finish`, for ops built only from pieces of validated ops (transform,
  /// compose): the result is marked validated when its total length allows.
  [[nodiscard]] op finish_validated() &&;

  void merge_into_last(const component_view& part);

  op op_;
  std::uint64_t total_length_ = 0;
};

}  // namespace otsync::ot
