/**
 * Source positions for YAML values. js-yaml has no AST, but its `listener` option reports balanced
 * open/close events for every node with offsets; we rebuild a tree of offsets from them so errors can
 * point at file:line:column for any key path.
 */
import yaml from 'js-yaml';

export interface PosNode {
  start: number;
  end: number;
  kind: 'mapping' | 'sequence' | 'scalar' | 'null';
  children: PosNode[];
  result: unknown;
}

export interface Located {
  line: number; // 1-based
  column: number; // 1-based
  offset: number;
}

export class SourceMap {
  private readonly lineStarts: number[] = [0];
  constructor(readonly text: string, readonly root: PosNode | undefined) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  locate(offset: number): Located {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.lineStarts[lo]! + 1, offset };
  }

  /** Skip whitespace, comments and a leading "- " so the offset lands on the value itself. */
  private skipToToken(offset: number): number {
    const t = this.text;
    let i = offset;
    for (;;) {
      while (i < t.length && (t[i] === ' ' || t[i] === '\t' || t[i] === '\n' || t[i] === '\r')) i++;
      if (t[i] === '#') {
        while (i < t.length && t[i] !== '\n') i++;
        continue;
      }
      if (t[i] === ':' && (t[i + 1] === ' ' || t[i + 1] === '\n')) { i++; continue; }
      if (t[i] === ',' ) { i++; continue; }
      break;
    }
    return Math.min(i, t.length);
  }

  /**
   * Where a key path is in the source. `key: true` points at the mapping key instead of its value.
   * If the path does not exist (a missing key), the deepest existing ancestor is returned.
   */
  find(path: ReadonlyArray<string | number>, opts: { key?: boolean } = {}): Located {
    let node = this.root;
    let keyNode: PosNode | undefined;
    if (!node) return this.locate(0);
    for (const seg of path) {
      let next: PosNode | undefined;
      keyNode = undefined;
      if (node.kind === 'mapping') {
        for (let i = 0; i + 1 < node.children.length; i += 2) {
          const k: PosNode = node.children[i]!;
          if (String(k.result) === String(seg)) { next = node.children[i + 1]; keyNode = k; break; }
        }
        // A key whose value is absent: point at the key itself.
        if (!next && keyNode) next = keyNode;
      } else if (node.kind === 'sequence' && typeof seg === 'number') {
        next = node.children[seg];
      }
      if (!next) return this.locate(this.skipToToken(node.start));
      node = next;
    }
    if (opts.key && keyNode) return this.locate(this.skipToToken(keyNode.start));
    return this.locate(this.skipToToken(node.start));
  }
}

/** Parse YAML text; throws js-yaml's YAMLException on syntax errors (it carries mark.line/column). */
export function parseWithPositions(text: string, filename: string): { value: unknown; map: SourceMap } {
  const stack: PosNode[] = [];
  let root: PosNode | undefined;
  const value = yaml.load(text, {
    filename,
    schema: yaml.CORE_SCHEMA, // no timestamps or binary: config values stay plain
    json: false,
    listener(event, state) {
      if (event === 'open') {
        stack.push({ start: state.position, end: state.position, kind: 'null', children: [], result: undefined });
      } else {
        const n = stack.pop();
        if (!n) return;
        n.end = state.position;
        n.result = state.result;
        n.kind = state.kind === 'mapping' || state.kind === 'sequence' || state.kind === 'scalar' ? state.kind : 'null';
        const parent = stack[stack.length - 1];
        if (parent) parent.children.push(n);
        else root = n;
      }
    },
  });
  return { value, map: new SourceMap(text, root) };
}
