//! Charts (SVG) and the HTML report from fanbench results JSON
