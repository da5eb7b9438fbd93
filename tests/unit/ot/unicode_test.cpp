#include "otsync/ot/unicode.hpp"

#include <gtest/gtest.h>

namespace otsync::ot::unicode {
namespace {

TEST(Unicode, CountsCodePointsNotBytes) {
  EXPECT_EQ(count_code_points(""), 0U);
  EXPECT_EQ(count_code_points("abc"), 3U);
  EXPECT_EQ(count_code_points("héllo 😀"), 7U);
  EXPECT_EQ(count_code_points("中𝄞"), 2U);
}

TEST(Unicode, ByteOffsetOfCodePoint) {
  const std::string_view text = "aé中😀b";
  EXPECT_EQ(byte_offset(text, 0), 0U);
  EXPECT_EQ(byte_offset(text, 1), 1U);
  EXPECT_EQ(byte_offset(text, 2), 3U);
  EXPECT_EQ(byte_offset(text, 3), 6U);
  EXPECT_EQ(byte_offset(text, 4), 10U);
  EXPECT_EQ(byte_offset(text, 5), text.size());
  EXPECT_EQ(byte_offset(text, 99), text.size());
  const std::string ascii(100, 'x');
  EXPECT_EQ(byte_offset(ascii + "é", 100), 100U);
  EXPECT_EQ(byte_offset(ascii + "é", 101), 102U);
}

TEST(Unicode, SubstrClampsAtTheEnd) {
  EXPECT_EQ(substr("aé中😀b", 1, 3), "é中😀");
  EXPECT_EQ(substr("aé中😀b", 3, 10), "😀b");
  EXPECT_EQ(substr("abc", 5, 1), "");
}

TEST(Unicode, ValidatesStrictUtf8) {
  std::size_t n = 0;
  EXPECT_EQ(validate_utf8("héllo 😀", n), utf8_status::valid);
  EXPECT_EQ(n, 7U);
  EXPECT_EQ(validate_utf8("\xC3", n), utf8_status::invalid);              // truncated
  EXPECT_EQ(validate_utf8("\xC0\xAF", n), utf8_status::invalid);          // overlong '/'
  EXPECT_EQ(validate_utf8("\xE0\x80\xAF", n), utf8_status::invalid);      // overlong
  EXPECT_EQ(validate_utf8("\xF4\x90\x80\x80", n), utf8_status::invalid);  // above U+10FFFF
  EXPECT_EQ(validate_utf8("\x80", n), utf8_status::invalid);              // stray continuation
  EXPECT_EQ(validate_utf8("\xFF", n), utf8_status::invalid);
  EXPECT_EQ(validate_utf8("\xED\xA0\x80", n), utf8_status::lone_surrogate);  // U+D800
  EXPECT_EQ(validate_utf8("\xED\xBF\xBF", n), utf8_status::lone_surrogate);  // U+DFFF
  EXPECT_EQ(validate_utf8("\xEF\xBF\xBF", n), utf8_status::valid);           // U+FFFF
}

TEST(Unicode, AppendsEveryEncodingLength) {
  std::string out;
  for (char32_t cp :
       {U'\x41', U'\x7F', U'\x80', U'\xE9', U'\x7FF', U'\x800', U'\xFFFF', U'\x10000', U'\x1F600', U'\x10FFFF'}) {
    append_utf8(out, cp);
  }
  EXPECT_EQ(out,
            "A\x7F\xC2\x80\xC3\xA9\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF");
  std::size_t n = 0;
  EXPECT_EQ(validate_utf8(out, n), utf8_status::valid);
  EXPECT_EQ(n, 10U);
}

}  // namespace
}  // namespace otsync::ot::unicode
