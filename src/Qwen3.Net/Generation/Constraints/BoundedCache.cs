namespace Qwen3.Net.Generation.Constraints;

/// <summary>A thread-safe least-recently-used cache holding at most a fixed number of entries.</summary>
internal sealed class BoundedCache<TKey, TValue>
    where TKey : notnull
{
    private readonly int _capacity;
    private readonly Dictionary<TKey, LinkedListNode<(TKey Key, TValue Value)>> _map = [];
    private readonly LinkedList<(TKey Key, TValue Value)> _order = new();
    private readonly Lock _gate = new();

    public BoundedCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _map.Count;
            }
        }
    }

    /// <summary>The cached value for <paramref name="key"/>, or a new one from <paramref name="create"/> (called outside the lock; on a race the first stored value wins).</summary>
    public TValue GetOrAdd(TKey key, Func<TValue> create)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                return node.Value.Value;
            }
        }

        // Compiling can take a while; other keys stay available meanwhile.
        TValue value = create();
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node))
            {
                return node.Value.Value;
            }

            _map.Add(key, _order.AddFirst((key, value)));
            if (_map.Count > _capacity)
            {
                _map.Remove(_order.Last!.Value.Key);
                _order.RemoveLast();
            }

            return value;
        }
    }
}
