#include "otsync/ot/op_composer.hpp"

#include <utility>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/ot/unicode.hpp"
#include "validated_access.hpp"

namespace otsync::ot {

// The accumulated op is a treap of pieces in op order, each node caching the
// output length (skips + inserts) of its subtree. Composing `next` walks it
// over that output exactly as ot-text-unicode's compose walks `take`: a
// position is reached by the shortest prefix with that output length, so
// deletes sitting at the boundary stay after it. Neighbouring pieces of one
// kind need not be merged here: `finish` merges them with the same
// (associative) rule, so the split into pieces never shows in the result.
struct op_composer::tree {
  struct node {
    std::string text;  // insert text or the recorded text of a delete
    std::uint64_t length = 0;
    std::uint64_t subtree_output = 0;
    node* left = nullptr;
    node* right = nullptr;
    std::uint32_t priority = 0;
    component_kind kind = component_kind::skip;
    bool has_text = false;

    [[nodiscard]] std::uint64_t output() const noexcept { return kind == component_kind::erase ? 0 : length; }
  };

  // Inserts grow in place up to this size; keeps pieces few and edits cheap.
  static constexpr std::size_t max_piece_bytes = 256;

  node* root = nullptr;
  std::size_t count = 0;
  std::uint64_t total_input_length = 0;  // bounds every piece length: no overflow
  std::uint32_t seed = 0x9E3779B9U;

  tree() = default;
  tree(const tree&) = delete;
  tree& operator=(const tree&) = delete;
  ~tree() { destroy(root); }

  static std::uint64_t output_of(const node* n) noexcept { return n ? n->subtree_output : 0; }
  static void update(node* n) noexcept { n->subtree_output = output_of(n->left) + n->output() + output_of(n->right); }

  node* make(component_kind kind, std::uint64_t length, std::string_view text, bool has_text) {
    seed ^= seed << 13U;  // xorshift32: priorities need only be well spread
    seed ^= seed >> 17U;
    seed ^= seed << 5U;
    auto* n = new node{std::string(text), length, 0, nullptr, nullptr, seed, kind, has_text};
    update(n);
    ++count;
    return n;
  }

  void release(node* n) noexcept {
    delete n;
    --count;
  }

  void destroy(node* n) noexcept {
    while (n != nullptr) {
      destroy(n->left);
      node* right = n->right;
      release(n);
      n = right;
    }
  }

  static node* merge(node* a, node* b) noexcept {
    if (a == nullptr) return b;
    if (b == nullptr) return a;
    if (a->priority > b->priority) {
      a->right = merge(a->right, b);
      update(a);
      return a;
    }
    b->left = merge(a, b->left);
    update(b);
    return b;
  }

  /// Splits `n` after its first `length` code points into `n` and a new node.
  node* split_piece(node* n, std::uint64_t length) {
    std::string_view rest;
    if (n->has_text) {
      const std::size_t bytes = unicode::byte_offset(n->text, length);
      rest = std::string_view(n->text).substr(bytes);
      node* tail = make(n->kind, n->length - length, rest, true);
      n->text.resize(bytes);
      n->length = length;
      return tail;
    }
    node* tail = make(n->kind, n->length - length, {}, false);
    n->length = length;
    return tail;
  }

  /// The shortest prefix of `t` with output length `length` (all of `t` if shorter), and the rest.
  std::pair<node*, node*> split(node* t, std::uint64_t length) {
    if (t == nullptr) return {nullptr, nullptr};
    if (length == 0) return {nullptr, t};
    const std::uint64_t left_output = output_of(t->left);
    if (length <= left_output) {
      auto [a, b] = split(t->left, length);
      t->left = b;
      update(t);
      return {a, t};
    }
    const std::uint64_t within = length - left_output;
    const std::uint64_t own = t->output();
    if (within < own) {
      node* tail = merge(split_piece(t, within), t->right);  // merge keeps the heap order
      t->right = nullptr;
      update(t);
      return {t, tail};
    }
    if (within == own) {
      node* rest = t->right;
      t->right = nullptr;
      update(t);
      return {t, rest};
    }
    auto [a, b] = split(t->right, within - own);
    t->right = a;
    update(t);
    return {t, b};
  }

  /// Appends a piece at the end of `t`, growing the last piece when it is a small one of the same kind.
  node* append(node* t, component_kind kind, std::uint64_t length, std::string_view text, bool has_text) {
    if (length == 0) return t;
    if (t != nullptr) {
      node* last = t;
      while (last->right != nullptr) last = last->right;
      const bool same_form = kind != component_kind::erase || last->has_text == has_text;
      if (last->kind == kind && same_form && last->text.size() + text.size() <= max_piece_bytes) {
        last->text.append(text);
        last->length += length;
        if (kind != component_kind::erase) {
          for (node* n = t; n != nullptr; n = n->right) n->subtree_output += length;
        }
        return t;
      }
    }
    return merge(t, make(kind, length, text, has_text));
  }

  /// Calls `fn(node*)` for each node of `t` in order, then frees them.
  template <class Fn>
  void drain(node* t, Fn&& fn) {
    while (t != nullptr) {
      drain(t->left, fn);
      node* right = t->right;
      fn(t);
      release(t);
      t = right;
    }
  }

  /// The insert piece holding output positions [position, position + span), or null.
  /// With `span == 0` it is the insert piece ending at, or holding, `position`.
  node* find_insert(std::uint64_t position, std::uint64_t span, std::uint64_t& start) const noexcept {
    const std::uint64_t probe = span == 0 ? position : position + 1;  // some position inside
    if (probe == 0) return nullptr;
    std::uint64_t base = 0;
    node* n = root;
    while (n != nullptr) {
      const std::uint64_t left_output = output_of(n->left);
      if (probe <= base + left_output) {
        n = n->left;
        continue;
      }
      const std::uint64_t piece_start = base + left_output;
      if (probe <= piece_start + n->output()) {
        if (n->kind != component_kind::insert) return nullptr;
        if (position < piece_start || position + span > piece_start + n->length) return nullptr;
        start = piece_start;
        return n;
      }
      base = piece_start + n->output();
      n = n->right;
    }
    return nullptr;
  }

  /// The common single-keystroke shapes, [p, "text"] and [p, {d:k}], landing
  /// inside one stored insert: edited in place along one root-to-leaf path.
  bool try_in_place(const op& next) {
    std::uint64_t position = 0;
    std::size_t i = 0;
    if (!next.empty() && next[0].is_skip()) {
      position = next[0].length();
      i = 1;
    }
    if (next.size() != i + 1) return false;
    const component& c = next[i];
    std::uint64_t start = 0;
    if (c.is_insert()) {
      node* n = find_insert(position, 0, start);
      if (n == nullptr || n->text.size() + c.text().size() > max_piece_bytes) return false;
      const std::size_t at = unicode::byte_offset(n->text, position - start);
      descend_and_adjust(position, n, static_cast<std::int64_t>(c.length()));
      n->text.insert(at, c.text());
      n->length += c.length();
      return true;
    }
    if (c.is_erase()) {
      node* n = find_insert(position, c.length(), start);
      if (n == nullptr || c.length() >= n->length) return false;
      const std::size_t from = unicode::byte_offset(n->text, position - start);
      const std::size_t to = from + unicode::byte_offset(std::string_view(n->text).substr(from), c.length());
      descend_and_adjust(position + 1, n, -static_cast<std::int64_t>(c.length()));
      n->text.erase(from, to - from);
      n->length -= c.length();
      return true;
    }
    return false;
  }

  /// Walks from the root to `target` (found at output position `probe`, as
  /// in find_insert) adding `delta` to each cached subtree output on the way.
  void descend_and_adjust(std::uint64_t probe, const node* target, std::int64_t delta) noexcept {
    std::uint64_t base = 0;
    node* n = root;
    while (n != nullptr) {
      const std::uint64_t left_output = output_of(n->left);
      n->subtree_output = static_cast<std::uint64_t>(static_cast<std::int64_t>(n->subtree_output) + delta);
      if (n == target) return;
      if (probe <= base + left_output) {
        n = n->left;
      } else {
        base += left_output + n->output();
        n = n->right;
      }
    }
  }

  void compose(const op& next) {
    if (try_in_place(next)) return;
    node* done = nullptr;  // the result so far
    node* rest = root;     // what `next` has not walked over yet
    root = nullptr;
    for (const component& c : next) {
      switch (c.kind()) {
        case component_kind::skip: {
          auto [walked, after] = split(rest, c.length());
          rest = after;
          const std::uint64_t got = output_of(walked);
          done = merge(done, walked);
          // Past the end the accumulated op keeps the document: an endless skip.
          done = append(done, component_kind::skip, c.length() - got, {}, false);
          break;
        }
        case component_kind::insert:
          done = append(done, component_kind::insert, c.length(), c.text(), true);
          break;
        case component_kind::erase: {
          auto [deleted, after] = split(rest, c.length());
          rest = after;
          std::string_view text = c.text();  // what is left of the recorded text
          std::uint64_t consumed = 0;
          const auto take_text = [&](std::uint64_t length) {
            if (!c.has_text()) return std::string_view{};
            const std::size_t bytes = unicode::byte_offset(text, length);
            const std::string_view part = text.substr(0, bytes);
            text.remove_prefix(bytes);
            return part;
          };
          drain(deleted, [&](node* piece) {
            switch (piece->kind) {
              case component_kind::skip:  // kept text is deleted now
                done = append(done, component_kind::erase, piece->length, take_text(piece->length), c.has_text());
                consumed += piece->length;
                break;
              case component_kind::insert:  // inserted text deleted again: both vanish
                take_text(piece->length);
                consumed += piece->length;
                break;
              case component_kind::erase:
                done = append(done, component_kind::erase, piece->length, piece->text, piece->has_text);
                break;
            }
          });
          const std::uint64_t remaining = c.length() - consumed;
          done = append(done, component_kind::erase, remaining, take_text(remaining), c.has_text());
          break;
        }
      }
    }
    root = merge(done, rest);
  }

  template <class Fn>
  static void for_each(const node* t, Fn&& fn) {
    while (t != nullptr) {
      for_each(t->left, fn);
      fn(*t);
      t = t->right;
    }
  }
};

op_composer::op_composer() : tree_(std::make_unique<tree>()) {}
op_composer::~op_composer() = default;
op_composer::op_composer(op_composer&&) noexcept = default;
op_composer& op_composer::operator=(op_composer&&) noexcept = default;

std::error_code op_composer::compose(const op& next) {
  if (auto error = detail::checked(next)) return error;
  std::uint64_t length = 0;
  for (const auto& c : next) length += c.length();  // < 2^53 after the check
  // Every length in the tree is at most the sum of all input lengths; keeping
  // that sum below 2^53 keeps the accumulated op within `check`'s limits.
  if (length > max_length - tree_->total_input_length) return errc::length_out_of_range;
  tree_->total_input_length += length;
  tree_->compose(next);
  return {};
}

op op_composer::finish() const {
  op_builder out(tree_->count);
  tree::for_each(tree_->root, [&](const tree::node& n) {
    out.append(component_view{n.kind, n.length, n.text, n.has_text});
  });
  return detail::validated_access::finish(std::move(out));  // every piece came from a checked op
}

std::size_t op_composer::piece_count() const noexcept {
  return tree_->count;
}

}  // namespace otsync::ot
