-- Corrections and busts by the fill they name: rebuilding a position from the journal follows
-- them to the positions a correction moved a fill to. Partial, so NEW fills (nearly every row)
-- cost nothing to index.
CREATE INDEX trade_fills_corrections ON trade_fills (venue, corrects_exec_id) WHERE kind <> 'NEW';
