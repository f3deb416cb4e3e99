"""RoutingService: explainable venue decisions and their hindsight analysis."""

from __future__ import annotations

from gateway._pb.execgw.v1 import routing_pb2 as pb
from gateway._pb.execgw.v1 import routing_pb2_grpc as pb_grpc
from gateway.api import convert, routing_convert
from gateway.api.base import Context, Servicer
from gateway.metrics import Metrics
from gateway.routing_desk import RoutingDesk


class RoutingServicer(Servicer, pb_grpc.RoutingServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]

    def __init__(self, metrics: Metrics, desk: RoutingDesk) -> None:
        super().__init__(metrics)
        self.desk = desk

    async def RouteOrder(
        self, request: pb.RouteOrderRequest, context: Context
    ) -> pb.RouteOrderResponse:
        order = convert.require_order(request.order, request.HasField("order"))
        decision, elapsed = self.desk.route(order)
        response = pb.RouteOrderResponse()
        routing_convert.decision(decision, response.decision, elapsed)
        return response

    async def GetRoutingReport(
        self, request: pb.GetRoutingReportRequest, context: Context
    ) -> pb.RoutingReport:
        problems: convert.Problems = []
        start = convert.trade_date(request.start_date, "start_date", problems)
        end = convert.trade_date(request.end_date, "end_date", problems)
        if start and end and start > end:
            problems.append(convert.FieldViolation("end_date", "must not be before start_date"))
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        convert.raise_if(problems)
        assert start is not None and end is not None
        report = await self.desk.report(
            start, end, tuple(request.symbols), deadline=context.time_remaining()
        )
        response = pb.RoutingReport()
        routing_convert.report(report, response)
        return response

    async def ListVenues(
        self, request: pb.ListVenuesRequest, context: Context
    ) -> pb.ListVenuesResponse:
        response = pb.ListVenuesResponse()
        for profile, breaker, fill in self.desk.venue_states():
            routing_convert.venue(profile, breaker, fill, response.venues.add())
        return response

    async def SetVenueStatus(self, request: pb.SetVenueStatusRequest, context: Context) -> pb.Venue:
        problems: convert.Problems = []
        convert.venue(request.venue, "venue", problems, required=True)
        status = routing_convert.OPERATOR_STATUSES.get(request.status)
        if status is None:
            problems.append(
                convert.FieldViolation("status", "must be VENUE_STATUS_UP or VENUE_STATUS_DOWN")
            )
        if len(request.reason) > 256:
            problems.append(convert.FieldViolation("reason", "is longer than 256 characters"))
        convert.raise_if(problems)
        assert status is not None
        self.desk.set_status(request.venue, status, request.reason)
        response = pb.Venue()
        routing_convert.venue(*self.desk.venue_state(request.venue), response)
        return response
