using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using RabbitMQ.Client;

namespace Envio.Tests.Support;

/// <summary>
/// What the code under test does on each channel of connections made through <see cref="Recording"/> (or wrapped by
/// <see cref="Of{T}"/>), in order: each call as it is made, and, for a call that returns a <see cref="ValueTask"/>
/// (an ack, a nack, a confirmed publish), when it completed. Every call is forwarded to the real client, unless
/// <see cref="Intercept"/> takes it: that is how a test stops the code at an exact point (a crash before an ack).
/// The broker speaks only TLS to the tests, so this is where the order of what was sent can be seen.
/// </summary>
public sealed class ChannelCalls
{
    private static long _sequence;
    private readonly ConcurrentQueue<ChannelCall> _calls = new();

    /// <param name="Sequence">Across every recorder of the process: orders calls on different connections.</param>
    /// <param name="Completed">False: the call as made; true: its task completed (successfully).</param>
    /// <param name="Open">Whether the channel was open when the call was made.</param>
    public sealed record ChannelCall(long Sequence, int Channel, string Method, object?[] Arguments, bool Open, bool Completed);

    /// <summary>
    /// Given each call as it is made; a task returned instead of null replaces the call (it is not forwarded), for
    /// calls that return a <see cref="ValueTask"/>.
    /// </summary>
    public Func<ChannelCall, Task?>? Intercept { get; set; }

    /// <summary>A factory that makes its connections as <paramref name="factory"/> does, their channels recording here.</summary>
    public static IConnectionFactory Recording(IConnectionFactory factory, ChannelCalls calls) => Tap.Of(factory, calls);

    /// <summary>A connection (or factory, or channel) whose channels record here.</summary>
    public static T Of<T>(T target, ChannelCalls calls) where T : class => Tap.Of(target, calls);

    public void Clear() => _calls.Clear();

    public List<ChannelCall> Snapshot() => [.. _calls.OrderBy(c => c.Sequence)];

    private ChannelCall Add(int channel, string method, object?[] arguments, bool open, bool completed)
    {
        var call = new ChannelCall(Interlocked.Increment(ref _sequence), channel, method, arguments, open, completed);
        _calls.Enqueue(call);
        return call;
    }

    /// <summary>Forwards every call to the real object; wraps the connections and channels it hands out.</summary>
#pragma warning disable CA1852 // not sealed: DispatchProxy derives the proxy's type from it at run time
    public class Tap : DispatchProxy
#pragma warning restore CA1852
    {
        private object _target = null!;
        private ChannelCalls _calls = null!;

        public static T Of<T>(T target, ChannelCalls calls) where T : class
        {
            var proxy = Create<T, Tap>();
            var tap = (Tap)(object)proxy;
            (tap._target, tap._calls) = (target, calls);
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            ChannelCall? call = null;
            if (_target is IChannel channel)
            {
                call = _calls.Add(channel.ChannelNumber, targetMethod!.Name, [.. args ?? []], channel.IsOpen, completed: false);
                if (targetMethod.ReturnType == typeof(ValueTask) && _calls.Intercept?.Invoke(call) is { } instead)
                {
                    return new ValueTask(instead);
                }
            }
            object? result;
            try
            {
                result = targetMethod!.Invoke(_target, args);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
            return result switch
            {
                Task<IConnection> connection => Wrap(connection),
                Task<IChannel> created => Wrap(created),
                ValueTask pending when call is not null => new ValueTask(Completion(pending, call)),
                _ => result,
            };
        }

        private async Task Completion(ValueTask pending, ChannelCall call)
        {
            await pending;
            _calls.Add(call.Channel, call.Method, call.Arguments, call.Open, completed: true);
        }

        private async Task<IConnection> Wrap(Task<IConnection> connection) => Of(await connection, _calls);

        private async Task<IChannel> Wrap(Task<IChannel> channel) => Of(await channel, _calls);
    }
}
