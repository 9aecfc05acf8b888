// A small CSV reader for the dataset tables (no quoted fields: none of the CT-ICH files
// use them). Columns are found by header name, so their order does not matter.
#pragma once

#include <string>
#include <vector>

namespace ich::data {

struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> row_lines;  // 1-based line number of each row in the file, for messages

  // Index of a column; throws ich::Error naming the file and the missing column.
  int column(const std::string& name) const;
  bool has_column(const std::string& name) const;
};

// Parses text; a UTF-8 byte-order mark, CR line ends, surrounding spaces and blank lines are
// accepted. Every row must have as many fields as the header.
CsvTable parse_csv(const std::string& text, const std::string& path);
CsvTable read_csv(const std::string& path);

// Strict integer field ("12", "-3"); throws naming file, line and column otherwise.
long long csv_int(const CsvTable& table, size_t row, int column);

}  // namespace ich::data
