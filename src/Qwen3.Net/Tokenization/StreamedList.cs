using System.Collections;

namespace Qwen3.Net;

/// <summary>
/// A list that one thread fills while another enumerates it: the enumerator hands out items as soon as they are
/// published and waits for more until the writer completes the list. This lets BpeTokenizer build its dictionaries
/// from the vocabulary and merges while the rest of <c>tokenizer.json</c> is still being parsed.
/// </summary>
/// <remarks>
/// Items live in fixed-size chunks that never move, so a reader never sees an array being resized under it.
/// Indexing and <see cref="Count"/> are for the writer, or for anyone once the list is complete.
/// </remarks>
internal sealed class StreamedList<T> : IReadOnlyList<T>
{
    private const int ChunkShift = 12;
    private const int ChunkSize = 1 << ChunkShift;

    // Publishing every item would take the lock 150 000 times per vocabulary; every 1024 items (about 150 times) is
    // enough to keep the reader busy, since it does more work per item than the parser.
    private const int PublishEvery = ChunkSize / 4;

    private readonly object _gate = new();
    private T[][] _chunks = new T[16][];
    private int _count;
    private int _published;
    private State _state;

    private enum State
    {
        Writing,
        Complete,
        Abandoned,
    }

    /// <summary>The number of items written so far.</summary>
    public int Count => _count;

    public T this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_count, nameof(index));
            return _chunks[index >> ChunkShift][index & (ChunkSize - 1)];
        }
    }

    /// <summary>Appends an item (writer only).</summary>
    public void Add(T item)
    {
        int chunk = _count >> ChunkShift;
        if (chunk == _chunks.Length)
        {
            // A reader may still hold the old directory: the chunks it can reach there are the same arrays.
            T[][] grown = new T[_chunks.Length * 2][];
            Array.Copy(_chunks, grown, _chunks.Length);
            Volatile.Write(ref _chunks, grown);
        }

        (_chunks[chunk] ??= new T[ChunkSize])[_count & (ChunkSize - 1)] = item;
        _count++;
        if (_count % PublishEvery == 0)
        {
            Publish(State.Writing);
        }
    }

    /// <summary>Publishes the last items and ends the enumeration of every reader once it has read them (writer only).</summary>
    public void Complete() => Publish(State.Complete);

    /// <summary>
    /// Makes every reader's enumeration throw <see cref="OperationCanceledException"/> (writer only): for a file that
    /// turns out to be broken, so that nobody builds on a partial list. Does nothing once the list is complete.
    /// </summary>
    public void Abandon()
    {
        lock (_gate)
        {
            if (_state == State.Writing)
            {
                _state = State.Abandoned;
                Monitor.PulseAll(_gate);
            }
        }
    }

    public IEnumerator<T> GetEnumerator()
    {
        int index = 0;
        while (true)
        {
            int available = WaitBeyond(index);
            if (available < 0)
            {
                yield break;
            }

            T[][] chunks = Volatile.Read(ref _chunks);
            for (; index < available; index++)
            {
                yield return chunks[index >> ChunkShift][index & (ChunkSize - 1)];
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private void Publish(State state)
    {
        lock (_gate)
        {
            if (_state != State.Writing)
            {
                return;
            }

            _published = _count;
            _state = state;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Waits until more than <paramref name="index"/> items are published; returns how many, or −1 at the end.</summary>
    private int WaitBeyond(int index)
    {
        lock (_gate)
        {
            while (true)
            {
                if (_state == State.Abandoned)
                {
                    throw new OperationCanceledException("The list was abandoned by its writer.");
                }

                if (_published > index)
                {
                    return _published;
                }

                if (_state == State.Complete)
                {
                    return -1;
                }

                Monitor.Wait(_gate);
            }
        }
    }
}
