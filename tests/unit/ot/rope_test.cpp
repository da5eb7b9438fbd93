#include "otsync/ot/rope.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "otsync/ot/unicode.hpp"

namespace otsync::ot {
namespace {

// --- helpers ---------------------------------------------------------------

std::string encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (const char32_t cp : text) ot::unicode::append_utf8(out, cp);
  return out;
}

// Iterations for the randomised tests: `fallback`, or OTSYNC_FUZZ_ITERATIONS when set.
std::size_t fuzz_iterations(std::size_t fallback) {
  const char* env = std::getenv("OTSYNC_FUZZ_ITERATIONS");
  if (env == nullptr || *env == '\0') return fallback;
  const unsigned long long value = std::strtoull(env, nullptr, 10);
  return value == 0 ? fallback : static_cast<std::size_t>(value);
}

// Code points of every UTF-8 length, astral ones included.
class text_generator {
 public:
  explicit text_generator(std::uint32_t seed) : rng_(seed) {}

  std::size_t below(std::size_t bound) { return std::uniform_int_distribution<std::size_t>(0, bound - 1)(rng_); }

  char32_t code_point() {
    switch (below(8)) {
      case 0:
        return static_cast<char32_t>(0x80 + below(0x800 - 0x80));  // 2 bytes
      case 1:
        return static_cast<char32_t>(0x4E00 + below(0x5000));  // 3 bytes (CJK)
      case 2:
        return static_cast<char32_t>(0x1F300 + below(0x300));  // 4 bytes (emoji)
      case 3:
        return static_cast<char32_t>(0x10000 + below(0x100000));  // any astral
      default:
        return static_cast<char32_t>(0x20 + below(0x5F));  // ASCII
    }
  }

  std::u32string text(std::size_t length) {
    std::u32string out(length, U' ');
    for (char32_t& cp : out) cp = code_point();
    return out;
  }

  std::u32string ascii(std::size_t length) {
    std::u32string out(length, U' ');
    for (char32_t& cp : out) cp = static_cast<char32_t>('a' + below(26));
    return out;
  }

 private:
  std::mt19937_64 rng_;
};

std::size_t chunk_count(const rope& r) {
  std::size_t chunks = 0;
  r.for_each_chunk([&](std::string_view chunk) {
    EXPECT_FALSE(chunk.empty());
    ++chunks;
  });
  return chunks;
}

// --- basics ----------------------------------------------------------------

TEST(rope, empty) {
  rope r;
  EXPECT_EQ(r.size(), 0U);
  EXPECT_EQ(r.size_bytes(), 0U);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.to_string(), "");
  EXPECT_EQ(r.substr(0, 10), "");
  EXPECT_TRUE(r == "");
  EXPECT_FALSE(r == "x");
  EXPECT_EQ(chunk_count(r), 0U);
  EXPECT_TRUE(r.check_invariants());
  r.erase(0, 5);
  r.insert(3, "");
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.check_invariants());

  const rope from_empty_view{std::string_view{}};
  EXPECT_TRUE(from_empty_view.empty());
  EXPECT_TRUE(from_empty_view.check_invariants());
}

TEST(rope, construct_from_text) {
  const rope small("hello, world");
  EXPECT_EQ(small.size(), 12U);
  EXPECT_EQ(small.size_bytes(), 12U);
  EXPECT_EQ(small.to_string(), "hello, world");
  EXPECT_TRUE(small == "hello, world");
  EXPECT_TRUE(small.check_invariants());

  text_generator gen(1);
  const std::u32string model = gen.text(50'000);
  const std::string utf8 = encode(model);
  const rope big(utf8);
  EXPECT_EQ(big.size(), model.size());
  EXPECT_EQ(big.size_bytes(), utf8.size());
  EXPECT_EQ(big.to_string(), utf8);
  EXPECT_TRUE(big.check_invariants());
  EXPECT_GT(chunk_count(big), 1U);
}

TEST(rope, insert_start_middle_end) {
  rope r("world");
  r.insert(0, "hello ");
  EXPECT_EQ(r.to_string(), "hello world");
  r.insert(5, ",");
  EXPECT_EQ(r.to_string(), "hello, world");
  r.insert(r.size(), "!");
  EXPECT_EQ(r.to_string(), "hello, world!");
  EXPECT_EQ(r.size(), 13U);
  EXPECT_TRUE(r.check_invariants());
}

TEST(rope, insert_into_empty_and_past_end) {
  rope r;
  r.insert(7, "abc");  // clamped: an empty rope starts at 0
  EXPECT_EQ(r.to_string(), "abc");
  r.insert(100, "def");
  EXPECT_EQ(r.to_string(), "abcdef");
  r.insert(static_cast<std::size_t>(-1), "g");
  EXPECT_EQ(r.to_string(), "abcdefg");
  EXPECT_TRUE(r.check_invariants());
}

TEST(rope, insert_with_explicit_code_points) {
  rope r("ab");
  r.insert(1, "\xC3\xA9\xE4\xB8\xAD", 2);  // "é中"
  EXPECT_EQ(r.to_string(), std::string("a") + "\xC3\xA9\xE4\xB8\xAD" + "b");
  EXPECT_EQ(r.size(), 4U);
  EXPECT_TRUE(r.check_invariants());
}

TEST(rope, erase_ranges) {
  rope r("0123456789");
  r.erase(2, 3);
  EXPECT_EQ(r.to_string(), "0156789");
  r.erase(0, 1);
  EXPECT_EQ(r.to_string(), "156789");
  r.erase(4, 100);  // cut short at the end
  EXPECT_EQ(r.to_string(), "1567");
  r.erase(4, 1);   // at the end: nothing
  r.erase(50, 1);  // past the end: nothing
  r.erase(1, 0);
  EXPECT_EQ(r.to_string(), "1567");
  r.erase(0, static_cast<std::size_t>(-1));  // huge count must not overflow
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.check_invariants());
  r.insert(0, "again");
  EXPECT_EQ(r.to_string(), "again");
}

TEST(rope, substr_clamps) {
  const rope r("abcdef");
  EXPECT_EQ(r.substr(0, 3), "abc");
  EXPECT_EQ(r.substr(2, 2), "cd");
  EXPECT_EQ(r.substr(4, 100), "ef");
  EXPECT_EQ(r.substr(6, 1), "");
  EXPECT_EQ(r.substr(60, 1), "");
  EXPECT_EQ(r.substr(1, 0), "");
  EXPECT_EQ(r.substr(0, static_cast<std::size_t>(-1)), "abcdef");
}

TEST(rope, multi_byte_and_astral_count_as_one) {
  // é (2 bytes), 中 (3), 😀 (4), 🤟 (4)
  const std::string e = "\xC3\xA9";
  const std::string zh = "\xE4\xB8\xAD";
  const std::string grin = "\xF0\x9F\x98\x80";
  const std::string love = "\xF0\x9F\xA4\x9F";
  rope r(e + zh + grin + love);
  EXPECT_EQ(r.size(), 4U);
  EXPECT_EQ(r.size_bytes(), 13U);
  EXPECT_EQ(r.substr(2, 1), grin);
  EXPECT_EQ(r.substr(1, 2), zh + grin);

  r.insert(2, "x");
  EXPECT_EQ(r.to_string(), e + zh + "x" + grin + love);
  r.insert(5, e);
  EXPECT_EQ(r.to_string(), e + zh + "x" + grin + love + e);
  r.erase(3, 1);  // 😀
  EXPECT_EQ(r.to_string(), e + zh + "x" + love + e);
  r.erase(0, 2);
  EXPECT_EQ(r.to_string(), "x" + love + e);
  EXPECT_EQ(r.size(), 3U);
  EXPECT_EQ(r.size_bytes(), 7U);
  EXPECT_TRUE(r.check_invariants());
}

TEST(rope, seek_every_position_in_mixed_text) {
  // Covers the in-leaf seek from both ends, in word-sized steps and byte by byte.
  text_generator gen(8);
  const std::u32string model = gen.text(4'000);
  const rope r(encode(model));
  for (std::size_t pos = 0; pos <= model.size(); ++pos) {
    const std::size_t count = 1 + pos % 13;
    ASSERT_EQ(r.substr(pos, count), encode(model.substr(pos, count))) << pos;
  }
  for (std::size_t pos = 0; pos <= model.size(); pos += 97) {
    rope copy(r);
    copy.insert(pos, "\xF0\x9F\xA4\x9F");
    copy.erase(pos + 1, 5);
    std::u32string expected = model;
    // Iterator form: GCC 12 warns falsely (-Wrestrict) on insert(pos, literal) at -O3.
    expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(pos), U'\U0001F91F');
    expected.erase(pos + 1, 5);
    ASSERT_TRUE(copy == encode(expected)) << pos;
  }
}

TEST(rope, multi_byte_chunks_split_on_code_points) {
  // Only 4-byte characters: every leaf boundary must still fall between them.
  std::string grins;
  for (int i = 0; i < 5000; ++i) grins += "\xF0\x9F\x98\x80";
  rope r(grins);
  EXPECT_EQ(r.size(), 5000U);
  EXPECT_TRUE(r.check_invariants());
  for (std::size_t i = 0; i < 300; ++i) r.insert(1234 + i * 3, "\xE4\xB8\xAD");
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.size(), 5300U);
  r.for_each_chunk([](std::string_view chunk) {
    EXPECT_TRUE(unicode::is_lead_byte(static_cast<unsigned char>(chunk.front())));
    std::size_t count = 0;
    EXPECT_EQ(unicode::validate_utf8(chunk, count), unicode::utf8_status::valid);
  });
}

TEST(rope, large_insert_then_erase_middle) {
  text_generator gen(7);
  const std::u32string base = gen.text(3'000);
  const std::u32string paste = gen.text(100'000);  // mixed widths: over 200 KB
  const std::string paste_utf8 = encode(paste);
  ASSERT_GT(paste_utf8.size(), 200'000U);

  rope r(encode(base));
  std::u32string model = base;
  r.insert(1'500, paste_utf8);
  model.insert(1'500, paste);
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.size(), model.size());
  EXPECT_EQ(r.to_string(), encode(model));

  r.erase(10'000, 40'000);
  model.erase(10'000, 40'000);
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.size(), model.size());
  EXPECT_EQ(r.size_bytes(), encode(model).size());
  EXPECT_EQ(r.to_string(), encode(model));
  EXPECT_EQ(r.substr(9'990, 20), encode(model.substr(9'990, 20)));

  // A paste at the very start and end of a multi-level tree.
  r.insert(0, paste_utf8);
  model.insert(0, paste);
  r.insert(r.size(), paste_utf8);
  model += paste;
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.to_string(), encode(model));
}

TEST(rope, erase_almost_everything_collapses_tree) {
  text_generator gen(11);
  const std::u32string model = gen.text(100'000);
  rope r(encode(model));
  r.erase(1, model.size() - 2);
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.to_string(), encode(model.substr(0, 1) + model.substr(model.size() - 1)));
  EXPECT_EQ(chunk_count(r), 1U);
}

TEST(rope, many_small_deletes_keep_leaves_full) {
  text_generator gen(12);
  std::u32string model = gen.text(60'000);
  rope r(encode(model));
  // Remove two of every three characters from the front half, one at a time, so that many
  // leaves shrink: they must be merged rather than left near-empty.
  for (std::size_t pos = 0; pos < model.size() / 3; ++pos) {
    r.erase(pos, 2);
    model.erase(pos, 2);
  }
  EXPECT_TRUE(r.check_invariants());  // includes the minimum fill of every leaf
  EXPECT_EQ(r.to_string(), encode(model));
  // Every chunk but the root holds a healthy share of the text.
  EXPECT_LE(chunk_count(r), r.size_bytes() / 64 + 1);
}

TEST(rope, copy_and_move) {
  text_generator gen(3);
  const std::string text = encode(gen.text(20'000));
  rope a(text);

  rope b(a);  // deep copy
  EXPECT_EQ(b.to_string(), text);
  EXPECT_TRUE(b.check_invariants());
  b.insert(0, "x");
  EXPECT_EQ(a.to_string(), text);
  EXPECT_EQ(b.size(), a.size() + 1);

  rope c("short");
  c = a;
  EXPECT_EQ(c.to_string(), text);
  c.erase(0, 100);
  EXPECT_EQ(a.to_string(), text);

  const rope& alias = c;
  c = alias;  // self copy-assignment
  EXPECT_EQ(c.size(), a.size() - 100);
  EXPECT_TRUE(c.check_invariants());

  rope d(std::move(b));
  EXPECT_EQ(d.size(), a.size() + 1);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(b.check_invariants());
  b.insert(0, "reuse");
  EXPECT_EQ(b.to_string(), "reuse");

  rope e("old");
  e = std::move(d);
  EXPECT_EQ(e.size(), a.size() + 1);
  EXPECT_TRUE(d.empty());  // NOLINT(bugprone-use-after-move)
  rope& self = e;
  e = std::move(self);  // self move-assignment leaves the value
  EXPECT_EQ(e.size(), a.size() + 1);

  rope empty_source;
  rope f(empty_source);
  EXPECT_TRUE(f.empty());
  f = rope("z");
  EXPECT_EQ(f.to_string(), "z");
  f.clear();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.size_bytes(), 0U);
  EXPECT_TRUE(f.check_invariants());
}

TEST(rope, equality_with_string_view) {
  rope r(std::string(3'000, 'a'));
  EXPECT_TRUE(r == std::string(3'000, 'a'));
  std::string other(3'000, 'a');
  other[2'999] = 'b';
  EXPECT_FALSE(r == other);
  other[2'999] = 'a';
  other[0] = 'b';
  EXPECT_FALSE(r == other);
  EXPECT_FALSE(r == std::string(2'999, 'a'));
}

TEST(rope, for_each_chunk_concatenates_to_text) {
  text_generator gen(5);
  const std::string text = encode(gen.text(30'000));
  const rope r(text);
  std::string joined;
  r.for_each_chunk([&](std::string_view chunk) { joined.append(chunk); });
  EXPECT_EQ(joined, text);
}

TEST(rope, insert_own_chunk) {
  // Text viewed from the rope itself must survive being inserted back.
  rope r(std::string(400, 'a') + std::string(100, 'b'));
  std::string_view first;
  r.for_each_chunk([&](std::string_view chunk) {
    if (first.empty()) first = chunk;
  });
  const std::string expected_piece(first);
  r.insert(10, first);  // overflows the leaf: the split path
  std::string expected = std::string(400, 'a') + std::string(100, 'b');
  expected.insert(10, expected_piece);
  EXPECT_EQ(r.to_string(), expected);
  EXPECT_TRUE(r.check_invariants());

  rope s("abcdef");
  std::string_view whole;
  s.for_each_chunk([&](std::string_view chunk) { whole = chunk; });
  s.insert(3, whole.substr(1, 2));  // fits in place: the memmove path
  EXPECT_EQ(s.to_string(), "abcbcdef");
}

// --- randomised model test -------------------------------------------------

void run_model(std::uint32_t seed, std::size_t iterations) {
  text_generator gen(seed);
  rope r;
  std::u32string model;
  for (std::size_t step = 0; step < iterations; ++step) {
    const bool big = gen.below(100) == 0;
    const std::size_t length = big ? 1 + gen.below(20'000) : 1 + gen.below(50);
    // Keep the document from growing without bound: erase more once it is large.
    const bool do_insert = model.size() < 100'000 ? gen.below(100) < 60 : gen.below(100) < 30;
    if (do_insert) {
      // Positions slightly past the end must append.
      const std::size_t pos = gen.below(model.size() + 3);
      const std::u32string text = gen.below(4) == 0 ? gen.ascii(length) : gen.text(length);
      const std::string utf8 = encode(text);
      if (gen.below(2) == 0) {
        r.insert(pos, utf8);
      } else {
        r.insert(pos, utf8, text.size());
      }
      model.insert(std::min(pos, model.size()), text);
    } else {
      const std::size_t pos = gen.below(model.size() + 3);
      r.erase(pos, length);
      if (pos < model.size()) model.erase(pos, length);
    }
    ASSERT_EQ(r.size(), model.size()) << "seed " << seed << " step " << step;
    if (step % 25 == 0 || big) {
      ASSERT_TRUE(r.check_invariants()) << "seed " << seed << " step " << step;
      const std::string expected = encode(model);
      ASSERT_EQ(r.size_bytes(), expected.size()) << "seed " << seed << " step " << step;
      ASSERT_TRUE(r == expected) << "seed " << seed << " step " << step;
      const std::size_t from = gen.below(model.size() + 2);
      const std::size_t count = gen.below(3'000);
      const std::u32string piece = from < model.size() ? model.substr(from, count) : U"";
      ASSERT_EQ(r.substr(from, count), encode(piece)) << "seed " << seed << " step " << step;
    }
  }
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.to_string(), encode(model));
  EXPECT_EQ(r.size_bytes(), encode(model).size());

  const rope copy(r);
  EXPECT_TRUE(copy.check_invariants());
  EXPECT_TRUE(copy == encode(model));
}

class rope_model : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(rope_model, matches_u32string) {
  run_model(GetParam(), fuzz_iterations(3'000));
}

INSTANTIATE_TEST_SUITE_P(seeds, rope_model, ::testing::Values(1U, 2U, 3U, 42U, 2024U));

// Range erases spanning many subtrees, on a deep tree: stresses the repair of nodes left with a
// single (underfull) child at several levels at once.
TEST(rope, random_range_erases_on_deep_tree) {
  text_generator gen(31);
  const std::size_t rounds = std::max<std::size_t>(fuzz_iterations(3'000) / 75, 1);
  for (std::size_t round = 0; round < rounds; ++round) {
    std::u32string model = gen.below(2) == 0 ? gen.ascii(100'000) : gen.text(100'000);
    rope r(encode(model));
    while (model.size() > 10) {
      const std::size_t pos = gen.below(model.size());
      const std::size_t count = 1 + gen.below(gen.below(2) == 0 ? model.size() : 2'000);
      r.erase(pos, count);
      model.erase(pos, count);
      ASSERT_TRUE(r.check_invariants()) << round << " " << pos << " " << count;
      ASSERT_EQ(r.size(), model.size());
      if (gen.below(4) == 0) {
        const std::u32string text = gen.text(1 + gen.below(3'000));
        const std::size_t at = gen.below(model.size() + 1);
        r.insert(at, encode(text));
        model.insert(at, text);
        ASSERT_TRUE(r.check_invariants());
      }
    }
    ASSERT_TRUE(r == encode(model));
  }
}

// Long erases that start just inside, or end just short of, every leaf: whichever leaf begins or
// ends a subtree leaves that subtree with a single child at each level, which must be repaired.
TEST(rope, long_erases_at_every_leaf_boundary) {
  text_generator gen(37);
  const std::u32string model = gen.ascii(300'000);
  const rope original(encode(model));
  std::vector<std::size_t> starts;  // code point where each leaf starts
  std::size_t at = 0;
  original.for_each_chunk([&](std::string_view chunk) {
    starts.push_back(at);
    at += unicode::count_code_points(chunk);
  });
  ASSERT_GT(starts.size(), 300U);  // three levels of inner nodes
  for (std::size_t j = 1; j + 1 < starts.size(); ++j) {
    const std::size_t span = 1 + gen.below(model.size() / 2);
    {
      rope r(original);
      const std::size_t pos = starts[j] + 1;
      r.erase(pos, span);
      ASSERT_TRUE(r.check_invariants()) << j;
      ASSERT_EQ(r.size(), pos + (model.size() - std::min(model.size(), pos + span)));
      ASSERT_EQ(r.substr(pos - 3, 6),
                encode(model.substr(pos - 3, 3)) +
                    encode(pos + span < model.size() ? model.substr(pos + span, 3) : std::u32string()));
    }
    {
      rope r(original);
      const std::size_t end = starts[j] - 1;
      const std::size_t pos = end - std::min(end, span);
      r.erase(pos, end - pos);
      ASSERT_TRUE(r.check_invariants()) << j;
      ASSERT_EQ(r.size(), model.size() - (end - pos));
    }
  }
}

// --- editing patterns ------------------------------------------------------

// Reference text for the typing test: a gap buffer, so the model stays cheap when edits follow a
// cursor (a u32string would move half the document on every keystroke).
class gap_model {
 public:
  std::size_t size() const { return before_.size() + after_.size(); }
  void move_to(std::size_t cursor) {
    while (before_.size() > cursor) {
      after_.push_back(before_.back());
      before_.pop_back();
    }
    while (before_.size() < cursor) {
      before_.push_back(after_.back());
      after_.pop_back();
    }
  }
  void type(char32_t cp) { before_.push_back(cp); }
  void backspace() { before_.pop_back(); }
  std::u32string text() const { return before_ + std::u32string(after_.rbegin(), after_.rend()); }

 private:
  std::u32string before_;
  std::u32string after_;  // reversed
};

TEST(rope, sequential_typing) {
  text_generator gen(99);
  rope r;
  gap_model model;
  std::size_t cursor = 0;
  constexpr std::size_t typed = 100'000;
  for (std::size_t i = 0; i < typed; ++i) {
    // Mostly type forward; now and then jump somewhere else, as an editor's cursor does.
    if (gen.below(500) == 0) cursor = gen.below(model.size() + 1);
    model.move_to(cursor);
    const char32_t cp = gen.below(10) == 0 ? gen.code_point() : U'a' + static_cast<char32_t>(gen.below(26));
    r.insert(cursor, encode(std::u32string_view(&cp, 1)), 1);
    model.type(cp);
    ++cursor;
    if (i % 10'000 == 0) {
      ASSERT_TRUE(r.check_invariants()) << i;
    }
  }
  ASSERT_TRUE(r.check_invariants());
  ASSERT_EQ(r.to_string(), encode(model.text()));

  // Delete half with backspace at a moving cursor.
  cursor = model.size();
  for (std::size_t i = 0; i < typed / 2; ++i) {
    if (gen.below(500) == 0 || cursor == 0) cursor = 1 + gen.below(model.size());
    model.move_to(cursor);
    r.erase(cursor - 1, 1);
    model.backspace();
    --cursor;
    if (i % 10'000 == 0) {
      ASSERT_TRUE(r.check_invariants()) << i;
    }
  }
  EXPECT_EQ(r.size(), typed / 2);
  EXPECT_TRUE(r.check_invariants());
  EXPECT_EQ(r.to_string(), encode(model.text()));
}

TEST(rope, forward_delete_everything_one_by_one) {
  text_generator gen(17);
  std::u32string model = gen.text(20'000);
  rope r(encode(model));
  while (!model.empty()) {
    const std::size_t pos = model.size() / 3;
    r.erase(pos, 1);
    model.erase(pos, 1);
    if (model.size() % 1'000 == 0) {
      ASSERT_TRUE(r.check_invariants()) << model.size();
      ASSERT_TRUE(r == encode(model)) << model.size();
    }
  }
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.check_invariants());
}

}  // namespace
}  // namespace otsync::ot
