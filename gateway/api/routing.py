"""RoutingService: explainable venue decisions and their hindsight analysis."""

from __future__ import annotations

from gateway._pb.execgw.v1 import routing_pb2 as pb
from gateway._pb.execgw.v1 import routing_pb2_grpc as pb_grpc
from gateway.api import convert
from gateway.api.base import Context, Servicer
from gateway.errors import NotImplementedYet

_OPERATOR_STATUSES = frozenset({pb.VENUE_STATUS_UP, pb.VENUE_STATUS_DOWN})


class RoutingServicer(Servicer, pb_grpc.RoutingServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]

    async def RouteOrder(
        self, request: pb.RouteOrderRequest, context: Context
    ) -> pb.RouteOrderResponse:
        convert.require_order(request.order, request.HasField("order"))
        raise NotImplementedYet("RouteOrder: venue scoring is not implemented yet")

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
        raise NotImplementedYet("GetRoutingReport: hindsight analysis is not implemented yet")

    async def ListVenues(
        self, request: pb.ListVenuesRequest, context: Context
    ) -> pb.ListVenuesResponse:
        raise NotImplementedYet("ListVenues: venue profiles are not implemented yet")

    async def SetVenueStatus(self, request: pb.SetVenueStatusRequest, context: Context) -> pb.Venue:
        problems: convert.Problems = []
        convert.venue(request.venue, "venue", problems, required=True)
        if request.status not in _OPERATOR_STATUSES:
            problems.append(
                convert.FieldViolation("status", "must be VENUE_STATUS_UP or VENUE_STATUS_DOWN")
            )
        if len(request.reason) > 256:
            problems.append(convert.FieldViolation("reason", "is longer than 256 characters"))
        convert.raise_if(problems)
        raise NotImplementedYet("SetVenueStatus: venue profiles are not implemented yet")
