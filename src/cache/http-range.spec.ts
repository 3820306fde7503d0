import { parseRange } from './http-range';

describe('parseRange', () => {
  it.each([
    [undefined, { kind: 'none' }],
    ['bytes=0-0', { kind: 'range', range: { start: 0, end: 0 } }],
    ['bytes=10-19', { kind: 'range', range: { start: 10, end: 19 } }],
    ['bytes=90-', { kind: 'range', range: { start: 90, end: 99 } }],
    ['bytes=-5', { kind: 'range', range: { start: 95, end: 99 } }],
    ['bytes=-500', { kind: 'range', range: { start: 0, end: 99 } }],
    ['bytes=50-5000', { kind: 'range', range: { start: 50, end: 99 } }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=20-10', { kind: 'none' }],
    ['bytes=0-1,5-6', { kind: 'none' }],
    ['items=0-1', { kind: 'none' }],
  ])('%p on 100 bytes → %p', (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });
});
