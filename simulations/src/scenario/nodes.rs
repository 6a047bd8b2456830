//! Naming nodes in scenario files: `"n3"` is node 3, `"n0..n5"` nodes 0 to 4, `"all"` every
//! node.

use std::collections::BTreeSet;

/// A node's index, 0-based; node `k` is called `n<k>` everywhere.
pub type NodeId = usize;

/// The name of node `id`.
pub fn node_name(id: NodeId) -> String {
    format!("n{id}")
}

/// Parses one node name (`"n3"`).
pub fn parse_node(text: &str, nodes: usize) -> Result<NodeId, String> {
    let digits = text
        .trim()
        .strip_prefix('n')
        .ok_or_else(|| format!("{text:?} is not a node name (n0, n1, ...)"))?;
    let id: NodeId = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a node name (n0, n1, ...)"))?;
    if id >= nodes {
        return Err(format!(
            "{text:?}: there are only {nodes} nodes (n0..n{nodes})"
        ));
    }
    Ok(id)
}

/// Parses a list of selectors (`"n3"`, `"n0..n5"`, `"all"`) into a set of nodes.
pub fn parse_nodes(selectors: &[String], nodes: usize) -> Result<BTreeSet<NodeId>, String> {
    let mut out = BTreeSet::new();
    for s in selectors {
        let s = s.trim();
        if s == "all" {
            out.extend(0..nodes);
        } else if let Some((a, b)) = s.split_once("..") {
            let lo = parse_node(a, nodes)?;
            let hi = if b.trim() == format!("n{nodes}") {
                nodes
            } else {
                parse_node(b, nodes)?
            };
            if hi <= lo {
                return Err(format!("{s:?} is an empty range"));
            }
            out.extend(lo..hi);
        } else {
            out.insert(parse_node(s, nodes)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_nodes(&v(&["n1", "n3..n5"]), 6).unwrap(),
            [1, 3, 4].into()
        );
        assert_eq!(parse_nodes(&v(&["n4..n6"]), 6).unwrap(), [4, 5].into());
        assert_eq!(parse_nodes(&v(&["all"]), 3).unwrap(), [0, 1, 2].into());
        assert!(parse_nodes(&v(&["n6"]), 6).is_err());
        assert!(parse_nodes(&v(&["x1"]), 6).is_err());
        assert!(parse_nodes(&v(&["n3..n3"]), 6).is_err());
    }
}
