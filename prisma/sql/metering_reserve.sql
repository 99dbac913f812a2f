-- A call's reservation: decide, then hold unless refused. Returns metering_decide's answer.
CREATE OR REPLACE FUNCTION "metering_reserve"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_decision jsonb := "metering_decide"(p);
BEGIN
  IF NOT v_decision ? 'refused' THEN
    PERFORM "metering_hold"(p, v_decision);
  END IF;
  RETURN v_decision;
END $$;
