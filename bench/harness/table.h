// A benchmark's table and the two ways it is written: CSV (RFC 4180 quoting) for programs,
// markdown for the docs.
#pragma once

#include <string>
#include <vector>

namespace ich::bench {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// A cell's number: "" for NaN or infinity (not measured), whole numbers from 1e4 on (not
// 1.758e+04), otherwise `precision` significant digits.
std::string format_number(double v, int precision = 4);

std::string to_csv(const Table& t);
std::string to_markdown(const Table& t);

}  // namespace ich::bench
