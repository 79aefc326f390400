using System.Diagnostics.Metrics;
using Envio.ConsumerService.Messaging;
using Envio.Contracts;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Envio.Tests.Observability;

/// <summary>
/// <c>envio.consumer.operator_paused</c>, which the alert on a pause left on reads: 1 for a type an operator paused, 0
/// for the others and after the resume.
/// </summary>
public sealed class OperatorPauseGaugeTests
{
    [Fact]
    public void The_gauge_says_which_types_an_operator_paused_until_they_are_resumed()
    {
        using var consumingSwitch = new ConsumingSwitch(NullLogger<ConsumingSwitch>.Instance);

        consumingSwitch.Pause(Orders.Type, "ops");
        var paused = Measure();
        consumingSwitch.Resume(Orders.Type, "ops");
        var resumed = Measure();

        Assert.Contains((1, Orders.Type.Name), paused);
        Assert.Contains((0, DataObjectTypes.Registered.Single(t => t != Orders.Type).Name), paused); // the other type goes on
        Assert.Contains((0, Orders.Type.Name), resumed);
    }

    private static List<(int Value, string? Type)> Measure()
    {
        var measured = new List<(int, string?)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, listening) =>
            {
                if (instrument.Name == "envio.consumer.operator_paused")
                {
                    listening.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
            measured.Add((value, tags.ToArray().Single(t => t.Key == "envio.type").Value as string)));
        listener.Start();
        listener.RecordObservableInstruments();
        return measured;
    }
}
