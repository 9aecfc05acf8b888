#include "bench/harness/table.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace ich::bench {

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string markdown_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

}  // namespace

std::string format_number(double v, int precision) {
  if (!std::isfinite(v)) return "";
  char buf[48];
  if (std::fabs(v) >= 1e4)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

std::string to_csv(const Table& t) {
  std::ostringstream os;
  for (size_t i = 0; i < t.columns.size(); ++i) os << (i ? "," : "") << csv_field(t.columns[i]);
  os << "\n";
  for (const auto& row : t.rows) {
    for (size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << csv_field(row[i]);
    os << "\n";
  }
  return os.str();
}

std::string to_markdown(const Table& t) {
  std::ostringstream os;
  os << "|";
  for (const auto& c : t.columns) os << " " << markdown_cell(c) << " |";
  os << "\n|";
  for (size_t i = 0; i < t.columns.size(); ++i) os << " --- |";
  os << "\n";
  for (const auto& row : t.rows) {
    os << "|";
    for (const auto& f : row) os << " " << markdown_cell(f) << " |";
    os << "\n";
  }
  return os.str();
}

}  // namespace ich::bench
