pub fn convert_line(line: &[u8], out: &mut Vec<u8>) { out.extend_from_slice(line); }
