// Randomised algebraic properties of the text-unicode OT core.
#include <gtest/gtest.h>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/ot/unicode.hpp"
#include "support/random_ops.hpp"

namespace otsync::ot {
namespace {

class OtProperties : public ::testing::Test {
 protected:
  test::random_ops random{test::fuzz_seed(7)};
  const int rounds = test::fuzz_iterations(3000);

  std::string apply_ok(const std::string& doc, const op& o) {
    auto r = ot::apply(doc, o);
    EXPECT_TRUE(r.has_value()) << r.error().message();
    return r ? *r : std::string();
  }
};

// TP1: both orders of two concurrent ops end in one document.
TEST_F(OtProperties, Tp1Converges) {
  for (int i = 0; i < rounds; ++i) {
    const std::string doc = random.document(40);
    const op a = random.op_for(doc);
    const op b = random.op_for(doc);
    const auto b_after_a = transform(b, a, side::right);
    const auto a_after_b = transform(a, b, side::left);
    ASSERT_TRUE(b_after_a && a_after_b);
    EXPECT_EQ(apply_ok(apply_ok(doc, a), *b_after_a), apply_ok(apply_ok(doc, b), *a_after_b))
        << "round " << i << " doc " << doc;
  }
}

TEST_F(OtProperties, TransformResultsAreCanonical) {
  for (int i = 0; i < rounds; ++i) {
    const std::string doc = random.document(40);
    const op a = random.op_for(doc);
    const op b = random.op_for(doc);
    const op moved = *transform(a, b, random.chance(0.5) ? side::left : side::right);
    EXPECT_FALSE(check(moved));
    EXPECT_EQ(normalize(moved), moved);
  }
}

TEST_F(OtProperties, ComposeAgreesWithApply) {
  for (int i = 0; i < rounds; ++i) {
    const std::string doc = random.document(40);
    const op a = random.op_for(doc);
    const std::string middle = apply_ok(doc, a);
    const op b = random.op_for(middle);
    const auto ab = compose(a, b);
    ASSERT_TRUE(ab.has_value());
    EXPECT_EQ(apply_ok(doc, *ab), apply_ok(middle, b)) << "round " << i;
    EXPECT_EQ(normalize(*ab), *ab);
  }
}

TEST_F(OtProperties, ComposeIsAssociative) {
  for (int i = 0; i < rounds / 3; ++i) {
    const std::string doc = random.document(30);
    const op a = random.op_for(doc);
    const std::string d1 = apply_ok(doc, a);
    const op b = random.op_for(d1);
    const op c = random.op_for(apply_ok(d1, b));
    EXPECT_EQ(apply_ok(doc, *compose(*compose(a, b), c)), apply_ok(doc, *compose(a, *compose(b, c))));
  }
}

TEST_F(OtProperties, NormalizeIsIdempotentOnRawOps) {
  for (int i = 0; i < rounds; ++i) {
    op raw;
    for (auto n = random.uniform(0, 8); n > 0; --n) {
      switch (random.uniform(0, 4)) {
        case 0:
          raw.push_back(component::skip(random.uniform(0, 3)));
          break;
        case 1:
          raw.push_back(component::insert(random.chance(0.2) ? std::string() : random.text(3)));
          break;
        case 2:
          raw.push_back(component::erase(random.uniform(0, 3)));
          break;
        default:
          raw.push_back(component::erase(random.chance(0.2) ? std::string() : random.text(3)));
          break;
      }
    }
    const op once = normalize(raw);
    EXPECT_EQ(normalize(once), once);
    EXPECT_FALSE(check(once)) << "normalize must produce a valid op";
  }
}

// A cursor moves with the text around it: the character after the cursor
// (when it survives) is still right after the cursor.
TEST_F(OtProperties, TransformPositionFollowsTheText) {
  for (int i = 0; i < rounds; ++i) {
    const std::string doc = random.document(40);
    const std::uint64_t length = unicode::count_code_points(doc);
    const op o = random.op_for(doc);
    const std::string after = apply_ok(doc, o);
    const std::uint64_t cursor = random.uniform(0, length);
    const std::uint64_t moved = transform_position(cursor, o);
    ASSERT_LE(moved, unicode::count_code_points(after));
    // The text before the cursor that the op kept and did not insert next to is before it still:
    // check with a marker character inserted at the cursor and transformed as a `right` insert.
    op_builder marker;
    marker.skip(cursor).insert("\x01");
    const op marker_op = std::move(marker).finish();
    const op marker_after = *transform(marker_op, o, side::right);
    const std::string marked = apply_ok(after, marker_after);
    const std::size_t marker_at = unicode::count_code_points(marked.substr(0, marked.find('\x01')));
    // transform_position never goes past where a `right` insert at the cursor lands.
    EXPECT_LE(moved, marker_at) << "round " << i;
    // …and with no insert at the cursor, they agree.
    bool insert_at_cursor = false;
    std::uint64_t pos = 0;
    for (const auto& c : o) {
      if (c.is_insert() && pos == cursor) insert_at_cursor = true;
      if (!c.is_insert()) pos += c.length();
    }
    if (!insert_at_cursor) {
      EXPECT_EQ(moved, marker_at) << "round " << i;
    }
  }
}

}  // namespace
}  // namespace otsync::ot
